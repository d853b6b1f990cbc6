# The conformance harness's client: the shared corpus runner's own exchange() and parse_responses(), imported
# as a module, so every server is read with the corpus's well-checked framing. It only observes and reports;
# judging the answers is the harness's job. Stdin: one JSON job; stdout: one JSON line per (server, case).
#
# The job: {"runner": path of run_corpus.py, "timeout": quiet seconds, "jobs": threads,
#           "servers": [{"name", "port"}], "cases": [{"key", "raw" (latin-1), "split", "split_delay",
#           "head_idx"}]}
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor


def main():
    job = json.load(sys.stdin)
    sys.path.insert(0, os.path.dirname(os.path.abspath(job["runner"])))
    import run_corpus  # noqa: E402 (its folder is known only from the job)

    timeout = float(job["timeout"])

    def one(server, case):
        payload = case["raw"].encode("latin-1")
        res = run_corpus.exchange("127.0.0.1", server["port"], payload, case.get("split"),
                                  float(case.get("split_delay", 0.2)), timeout)
        out = {"server": server["name"], "key": case["key"], "connect_error": res["connect_error"]}
        if res["connect_error"]:
            return out
        responses, junk = run_corpus.parse_responses(res["data"], case["head_idx"], res["closed"])
        out.update(
            responses=[{"status": r["status"], "interim": r["interim"], "complete": r["complete"]}
                       for r in responses],
            junk=len(junk),
            closed=res["closed"],
            send_error=res["send_error"],
            elapsed=round(res["elapsed"], 3),
        )
        return out

    pairs = [(s, c) for c in job["cases"] for s in job["servers"]]
    with ThreadPoolExecutor(max_workers=int(job["jobs"])) as pool:
        for out in pool.map(lambda p: one(*p), pairs):
            print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
