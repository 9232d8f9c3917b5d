"""A local Ray cluster of more than one node, on 127.0.0.1 only, for the tests.

`cargo xtask ray start` and `cargo xtask test` run this with the Python of
`.venv-ray`; it starts a head (with the dashboard and its Jobs API) and
`--workers` worker nodes, prints `READY <gcs address>` once every node is
alive, and shuts the whole cluster down on SIGTERM or SIGINT.

Why not `ray start`: Ray keeps every port on 127.0.0.1 only with
RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, and with that setting `ray start
--address …` refuses to add a worker node; otherwise Ray replaces
127.0.0.1 with the host's routable address and listens there. Ray's own
test utility `ray.cluster_utils.Cluster` (documented in Ray's "Testing Ray
programs" guide as the way to simulate a multi-node cluster on one machine)
starts the nodes directly, so both hold.
"""

import argparse
import os
import signal
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gcs-port", type=int, required=True)
    ap.add_argument("--dashboard-port", type=int, required=True)
    ap.add_argument("--client-port", type=int, required=True)
    ap.add_argument("--agent-ports", required=True, help="one per node, comma-separated")
    ap.add_argument("--temp-dir", required=True)
    ap.add_argument("--head-cpus", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--worker-cpus", type=int, default=2)
    a = ap.parse_args()
    agents = [int(p) for p in a.agent_ports.split(",")]
    if len(agents) != 1 + a.workers:
        print(f"--agent-ports needs {1 + a.workers} ports", file=sys.stderr)
        return 2
    # the nodes' sessions (and their unix sockets, whose paths must stay under
    # 107 bytes) go straight under --temp-dir, as with `ray start --temp-dir`;
    # Ray also writes the cluster's address under $RAY_TMPDIR/ray
    os.environ["RAY_TMPDIR"] = a.temp_dir
    os.makedirs(os.path.join(a.temp_dir, "ray"), exist_ok=True)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args=dict(
            num_cpus=a.head_cpus,
            include_dashboard=True,
            dashboard_host="127.0.0.1",
            dashboard_port=a.dashboard_port,
            gcs_server_port=a.gcs_port,
            ray_client_server_port=a.client_port,
            dashboard_agent_listen_port=agents[0],
            temp_dir=a.temp_dir,
        ),
    )

    def stop(*_):
        cluster.shutdown()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for i in range(a.workers):
        cluster.add_node(num_cpus=a.worker_cpus, dashboard_agent_listen_port=agents[1 + i])
    cluster.wait_for_nodes()
    print(f"READY {cluster.address}", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
