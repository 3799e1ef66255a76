"""Build `self_instruct_alpaca.jsonl`: the 175 human-written Self-Instruct seed tasks (../seeds/, Apache-2.0) in
the Alpaca shape most instruction datasets use, one row per instance ({id, instruction, input, output}), for the
curation example (`examples/recipes/curate_instructions.yaml`). Run from anywhere: `python build.py`."""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    rows = []
    for line in (HERE.parent / "seeds" / "self_instruct_seed_tasks.jsonl").read_text(encoding="utf-8").splitlines():
        task = json.loads(line)
        for k, instance in enumerate(task["instances"]):
            rows.append(
                {
                    "id": f"{task['id']}:{k}",
                    "instruction": task["instruction"],
                    "input": instance["input"],
                    "output": instance["output"],
                }
            )
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    (HERE / "self_instruct_alpaca.jsonl").write_text(text, encoding="utf-8")
    print(f"wrote {len(rows)} rows")


if __name__ == "__main__":
    main()
