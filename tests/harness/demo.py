"""`make demo`: dev environment up, operator running, examples applied, the result shown."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time

from tests.harness import devenv
from tests.harness.binaries import ensure_binaries
from tests.harness.operator_process import OperatorProcess


def _exports() -> dict[str, str]:
    env = {}
    for line in devenv.ENV_FILE.read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value.strip('"')
    env.pop("PATH", None)
    return env


def main() -> int:
    started_here = devenv._running_pid() is None
    if started_here and devenv.up() != 0:
        return 1
    env = _exports()
    kubectl = [str(ensure_binaries() / "kubectl"), "--kubeconfig", env["KUBECONFIG"]]

    def run(*args: str) -> str:
        return subprocess.run([*kubectl, *args], check=True, capture_output=True, text=True).stdout

    # The default namespace policy lets nobody use the operator's own identity; the demo allows its namespace.
    policy = devenv.DEV / "policy.yaml"
    policy.write_text("operatorIdentity:\n  namespaces: [demo]\n")
    operator = OperatorProcess(
        # The demo's registry hosts answer nobody: no verification against them.
        devenv.DEV / "operator.log",
        env,
        ["--policy", str(policy), "--metrics-port", "0", "--no-verify"],
    )
    try:
        print("\n$ ecr-pull-secrets run --policy .dev/policy.yaml   (log: .dev/operator.log)")
        operator.start()
        print("$ kubectl apply -f examples/")
        applied = time.monotonic()
        print(run("apply", "-f", "examples/"), end="")
        run("wait", "--for=condition=Ready", "--timeout=60s", "-n", "demo", "ecrpullsecret/myapp")
        print(f"\nReady {time.monotonic() - applied:.2f}s after apply.\n")
        print("$ kubectl get ecrpullsecrets -n demo -o wide")
        print(run("get", "ecrpullsecrets", "-n", "demo", "-o", "wide"))
        print("$ kubectl get secret myapp-ecr -n demo")
        print(run("get", "secret", "myapp-ecr", "-n", "demo"))
        secret = json.loads(run("get", "secret", "myapp-ecr", "-n", "demo", "-o", "json"))
        config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
        for entry in config["auths"].values():
            entry["password"] = entry["auth"] = "<redacted>"
        print("its .dockerconfigjson (tokens redacted):")
        print(json.dumps(config, indent=2))
        print("\nstatus:")
        print(
            json.dumps(
                json.loads(run("get", "ecrpullsecret", "myapp", "-n", "demo", "-o", "json"))["status"],
                indent=2,
            )
        )
    finally:
        operator.stop()
        if started_here:
            devenv.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
