"""The probe tool (tests/data/probe_tool.py) as a descriptor: it reports, from inside a step's container, what
the step can see and do. Shared by the tests of every container engine."""

from __future__ import annotations

import json
from pathlib import Path

PROBE = (Path(__file__).parent.parent / "data" / "probe_tool.py").read_text()


def probe_descriptor(folder: Path, image: str, pin: str | None, name: str = "probe") -> Path:
    doc = {
        "name": name,
        "tool-version": "1",
        "schema-version": "0.5",
        "description": "reports what a step sees inside its container",
        "command-line": "python3 -c [CODE] [MODE] [SECONDS] [INPUT]",
        "container-image": {"type": "docker", "image": image, **({"container-hash": pin} if pin else {})},
        "inputs": [
            {
                "id": "code",
                "name": "code",
                "type": "String",
                "value-key": "[CODE]",
                "default-value": PROBE,
                "optional": True,
            },
            {
                "id": "mode",
                "name": "mode",
                "type": "String",
                "value-key": "[MODE]",
                "default-value": "report",
                "optional": True,
            },
            {
                "id": "seconds",
                "name": "seconds",
                "type": "Number",
                "value-key": "[SECONDS]",
                "default-value": 0,
                "optional": True,
            },
            {"id": "input", "name": "input", "type": "File", "list": True, "value-key": "[INPUT]"},
        ],
        "output-files": [{"id": "report", "name": "report", "path-template": "probe.json"}],
    }
    path = folder / "probe.json"
    path.write_text(json.dumps(doc))
    return path
