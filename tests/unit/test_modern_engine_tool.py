"""tools/modern_engine.py without starting anything: instances never share a bridge, a socket
or an address range with each other or with the system engine; env and errors are usable."""
from __future__ import annotations

import importlib.util
import ipaddress
import sys

import pytest

from stagelab import naming

TOOL = naming.repo_root() / "tools" / "modern_engine.py"


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("modern_engine_under_test", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module   # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _networks(inst) -> list[ipaddress.IPv4Network]:
    return [ipaddress.ip_network(inst.bridge_net), ipaddress.ip_network(inst.pool)]


def test_instances_have_their_own_bridge_socket_and_ranges(tool):
    system_default = ipaddress.ip_network("172.17.0.0/16")   # docker0 of a default engine
    names = ["default", "itest", "measure", "a", "b-2", "ci"]
    instances = [tool.Instance(n) for n in names]
    assert tool.Instance("default").bridge == "d28br0"
    assert len({i.bridge for i in instances}) == len({i.index for i in instances})
    for inst in instances:
        assert len(inst.bridge) <= 15                            # Linux interface name limit
        assert len(str(inst.socket)) < 108                       # unix socket path limit
        bridge_net, pool = _networks(inst)
        assert ipaddress.ip_interface(inst.bridge_cidr).network == bridge_net
        assert not bridge_net.overlaps(pool)
        assert not any(net.overlaps(system_default) for net in (bridge_net, pool))
    by_index = {i.index: i for i in instances}
    for a in by_index.values():
        for b in by_index.values():
            if a is not b:
                assert a.socket != b.socket and a.data_root != b.data_root
                assert not any(x.overlaps(y) for x in _networks(a) for y in _networks(b)), (a, b)


def test_rules_cover_both_ranges_and_carry_the_instance_tag(tool):
    inst = tool.Instance("itest")
    rules = [" ".join(r) for r in tool._rules(inst)]
    for net in (inst.bridge_net, inst.pool):
        assert any("FORWARD" in r and f"-s {net}" in r and "ACCEPT" in r for r in rules)
        assert any("FORWARD" in r and f"-d {net}" in r and "ACCEPT" in r for r in rules)
        assert any("POSTROUTING" in r and f"-s {net}" in r and "MASQUERADE" in r for r in rules)
    assert all(f"{tool.RULE_TAG}-itest" in r for r in rules)


def test_env_puts_the_docker28_cli_first_and_a_lab_docker_config(tool, monkeypatch, tmp_path):
    monkeypatch.setenv("STAGELAB_CACHE", str(tmp_path))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    inst = tool.Instance("default")
    lines = dict(line.removeprefix("export ").split("=", 1) for line in tool.env_lines(inst))
    assert lines["DOCKER_HOST"] == f"unix://{inst.socket}"
    assert lines["PATH"].split(":")[0] == str(tmp_path / "engine-modern" / "cli")
    assert lines["PATH"].endswith(":/usr/bin:/bin")
    assert lines["DOCKER_CONFIG"] == str(tmp_path / "engine-modern" / "docker-config")


def test_bad_instance_name_and_non_root_are_one_line_errors(tool, monkeypatch, capsys):
    assert tool.main(["--instance", "Bad Name", "status"]) == 2
    assert "--instance" in capsys.readouterr().err
    monkeypatch.setattr(tool.os, "geteuid", lambda: 1000)
    assert tool.main(["--instance", "unit", "start"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "root" in err[0] and "Traceback" not in err[0]
