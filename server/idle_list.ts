// The server's idle connections in the order they became idle, oldest first: what the connection cap closes
// first when it needs room. A doubly linked list through the connections themselves, so that a connection
// going idle or busy (twice per keep-alive request) costs a few pointer writes and allocates nothing.

/** What the list links: its two fields belong to the list, never to their owner. */
export interface IdleNode {
  /** The connection that became idle before this one, or null. */
  idlePrev: IdleNode | null;
  /** The connection that became idle after this one, or null. */
  idleNext: IdleNode | null;
}

/**
 * Idle connections, oldest first. `push` when one becomes idle, `remove` when it is busy again or closes.
 *
 * @example
 * ```ts
 * import { IdleList, type IdleNode } from "./idle_list.ts";
 * const list = new IdleList<IdleNode & { name: string }>();
 * const a = { name: "a", idlePrev: null, idleNext: null };
 * const b = { name: "b", idlePrev: null, idleNext: null };
 * list.push(a);
 * list.push(b);
 * list.remove(a);
 * console.log(list.oldest?.name); // "b"
 * ```
 */
export class IdleList<T extends IdleNode> {
  #head: T | null = null;
  #tail: T | null = null;
  #size = 0;

  /** The connection idle the longest, or null when none is idle. */
  get oldest(): T | null {
    return this.#head;
  }

  /** How many are idle. */
  get size(): number {
    return this.#size;
  }

  /**
   * Add `node` as the newest idle one (once: a node already in the list is left where it is).
   *
   * @param node The connection that became idle.
   */
  push(node: T): void {
    if (node.idlePrev !== null || this.#head === node) return;
    node.idleNext = null;
    node.idlePrev = this.#tail;
    if (this.#tail === null) this.#head = node;
    else this.#tail.idleNext = node;
    this.#tail = node;
    this.#size++;
  }

  /**
   * Take `node` out (nothing when it is not in the list).
   *
   * @param node The connection that is busy again, or closed.
   */
  remove(node: T): void {
    const prev = node.idlePrev as T | null;
    const next = node.idleNext as T | null;
    if (prev === null && this.#head !== node) return;
    if (prev === null) this.#head = next;
    else prev.idleNext = next;
    if (next === null) this.#tail = prev;
    else next.idlePrev = prev;
    node.idlePrev = node.idleNext = null;
    this.#size--;
  }
}
