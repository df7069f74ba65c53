"""Write stacks/ec2_instance_types.json: every EC2 instance type name, from botocore's EC2 model.

botocore is AWS's own, maintained description of the EC2 API; its InstanceType enum lists
every type the API accepts. `pulumi up` must not need botocore, so its list is copied here at
development time (botocore is in the dev group) and tests/test_config.py checks the copy.
Run: .venv/bin/python scripts/gen_ec2_instance_types.py
"""

from __future__ import annotations

import json
from pathlib import Path

import botocore
from botocore.loaders import create_loader

TARGET = Path(__file__).resolve().parent.parent / "stacks" / "ec2_instance_types.json"


def instance_types_data() -> dict[str, object]:
    """The file's content: its source, the botocore version, and the sorted type names."""
    model = create_loader().load_service_model("ec2", "service-2")
    names = sorted(model["shapes"]["InstanceType"]["enum"])
    return {
        "source": "botocore data/ec2/*/service-2.json, shape InstanceType",
        "botocoreVersion": botocore.__version__,
        "instanceTypes": names,
    }


def render() -> str:
    return json.dumps(instance_types_data(), indent=0) + "\n"


if __name__ == "__main__":
    TARGET.write_text(render())
    print(f"wrote {TARGET.name}: {len(instance_types_data()['instanceTypes'])} instance types")
