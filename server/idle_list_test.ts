import assert from "node:assert/strict";
import { IdleList, type IdleNode } from "./idle_list.ts";

type Node = IdleNode & { name: string };
const node = (name: string): Node => ({ name, idlePrev: null, idleNext: null });

/** The names from oldest to newest, walking the links both ways (they must agree). */
function names(list: IdleList<Node>): string[] {
  const out: string[] = [];
  let last: Node | null = null;
  for (let n = list.oldest; n !== null; n = n.idleNext as Node | null) {
    assert.equal(n.idlePrev, last, `${n.name} links back to the one before it`);
    out.push(n.name);
    last = n;
  }
  assert.equal(out.length, list.size);
  return out;
}

Deno.test("IdleList keeps idle connections oldest first through pushes and removals anywhere", () => {
  const list = new IdleList<Node>();
  const [a, b, c, d] = ["a", "b", "c", "d"].map(node);
  assert.equal(list.oldest, null);
  for (const n of [a, b, c, d]) list.push(n);
  assert.deepEqual(names(list), ["a", "b", "c", "d"]);
  list.remove(b); // busy again: from the middle
  assert.deepEqual(names(list), ["a", "c", "d"]);
  list.push(b); // idle again: now the newest
  assert.deepEqual(names(list), ["a", "c", "d", "b"]);
  list.remove(a); // the oldest
  list.remove(b); // the newest
  assert.deepEqual(names(list), ["c", "d"]);
  list.push(c); // already in: stays where it is
  list.remove(a); // not in: nothing happens
  assert.deepEqual(names(list), ["c", "d"]);
  list.remove(c);
  list.remove(d);
  assert.deepEqual(names(list), []);
  assert.equal(list.oldest, null);
  list.push(d);
  assert.deepEqual(names(list), ["d"]);
});
