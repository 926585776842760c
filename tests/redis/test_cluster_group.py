"""tests/support/cluster.py against real processes, without Authly code: a 3-master,
1-replica Redis Cluster forms, serves a key on the node owning its slot, promotes a
replica when its master is SIGKILLed and takes the old master back as that replica's
replica once it is started again; with and without a password."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from tests.support.cluster import REDIS_CLI, RedisClusterGroup
from tests.support.processes import REDIS_SERVER
from tests.support.sentinel import RedisReplyError

pytestmark = pytest.mark.redis

PASSWORD = "cluster-pw/with:odd@chars"  # no space: redis_ping sends AUTH inline


@pytest.fixture(params=[None, PASSWORD], ids=["no-password", "password"])
async def group(tmp_path, request) -> AsyncIterator[RedisClusterGroup]:
    if REDIS_SERVER is None or REDIS_CLI is None:
        pytest.skip("redis-server or redis-cli not installed")
    workdir = tmp_path / "cluster"
    workdir.mkdir()
    group = RedisClusterGroup(workdir, password=request.param)
    try:
        await group.start()
        yield group
    finally:
        group.close()


async def _set_get(group: RedisClusterGroup, key: str, value: str) -> int:
    """SET then GET ``key`` on the master owning its slot (following a MOVED reply from
    any other master); the owner's port."""
    port = (await group.master_ports())[0]
    try:
        assert await group.node_command(port, "SET", key, value) == "OK"
    except RedisReplyError as exc:  # MOVED <slot> 127.0.0.1:<port>
        kind, _slot, address = str(exc).split()
        assert kind == "MOVED"
        port = int(address.rsplit(":", 1)[1])
        assert await group.node_command(port, "SET", key, value) == "OK"
    assert await group.node_command(port, "GET", key) == value
    return port


async def test_cluster_forms_fails_over_and_takes_a_node_back(group: RedisClusterGroup) -> None:
    masters = await group.master_ports()
    assert len(masters) == 3
    assert len(group.nodes) == 6
    url = group.url
    for port in masters:
        assert f"127.0.0.1:{port}" in url
    if group.password:
        assert url.startswith("redis://:cluster-pw%2Fwith%3Aodd%40chars@127.0.0.1:")
    else:
        assert url.startswith("redis://127.0.0.1:")
    for port in group.live_ports():
        info = await group.node_command(port, "CLUSTER", "INFO")
        assert "cluster_state:ok" in info
        assert "cluster_known_nodes:6" in info

    # A key lives on the master owning its slot (CLUSTER KEYSLOT, CLUSTER NODES agree).
    owner = await _set_get(group, "greeting", "hello")
    slot = await group.node_command(owner, "CLUSTER", "KEYSLOT", "greeting")
    node = next(n for n in await group.cluster_nodes() if n.port == owner)
    assert any(_covers(r, slot) for r in node.slots)

    # SIGKILL that master: its replica takes over, the cluster is ok again.
    replica = await group.replica_of(owner)
    started = time.monotonic()
    new = await group.kill_master(owner)
    failover = time.monotonic() - started
    assert new == replica
    assert owner not in await group.master_ports()
    assert new in await group.master_ports()
    assert len(await group.master_ports()) == 3
    assert (await group.node_command(new, "ROLE"))[0] == "master"
    for port in group.live_ports():
        assert await group.cluster_ok(port)
    assert await _set_get(group, "after-failover", "still here") == new

    # Started again on its port with its nodes.conf, it rejoins as the new master's replica.
    started = time.monotonic()
    await group.restart_node(owner)
    rejoin = time.monotonic() - started
    assert (await group.node_command(owner, "ROLE"))[0] == "slave"
    assert await group.replica_of(new) == owner
    assert sorted(await group.master_ports()) == sorted([*(set(masters) - {owner}), new])
    for port in group.live_ports():
        assert await group.cluster_ok(port)
    assert len(group.live_ports()) == 6
    print(f"failover {failover:.2f} s, rejoin {rejoin:.2f} s")


def _covers(slot_range: str, slot: int) -> bool:
    if slot_range.startswith("["):  # a slot being migrated: [slot->-id] / [slot-<-id]
        return False
    low, _, high = slot_range.partition("-")
    return int(low) <= slot <= int(high or low)
