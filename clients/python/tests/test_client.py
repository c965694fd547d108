"""troupe_client against a real system: every command, and errors as codes."""

import os

import pytest

import troupe_client
from troupe_client import TroupeError


def test_connect_prefers_the_local_socket(system):
    with troupe_client.connect(system.where, home=system.home) as c:
        assert c.endpoint.startswith("ipc://")
        assert c.endpoint.endswith("/run/client.sock")
        status = c.status()
        assert status["port"] == system.port
        assert status["state"] == "running"


def test_load_spawn_ask_tell_kill_actors(system):
    with troupe_client.connect(system.where, home=system.home) as c:
        loaded = c.load(system.package("encoders-1.0.0.tpkg"))
        assert loaded["group"] == "encoders"
        assert loaded["signer"] == "dev"
        assert [p["group"] for p in c.list()] == ["encoders"]
        morse = c.spawn("Morse", package="encoders", name="morse")
        assert morse.startswith("@")
        assert c.ask(morse, "SOS") == "... --- ..."
        assert c.ask("morse", "E") == "."
        c.tell(morse, "ignored")
        listed = {a["address"]: a for a in c.actors()}
        assert listed[morse]["type"] == "Morse"
        assert listed[morse]["state"] == "running"
        assert c.kill(morse)["address"] == morse
        with pytest.raises(TroupeError) as e:
            c.ask(morse, "SOS")
        assert e.value.code == "not_found"


def test_python_and_cpp_encoders_agree_through_the_client(system):
    with troupe_client.connect(system.where, home=system.home) as c:
        c.load(system.package("encoders-1.0.0.tpkg"))
        c.load(system.package("encoders_py-1.0.0.tpkg"))
        for t in ("Morse", "Base64", "Rot13"):
            a = c.spawn(t, package="encoders")
            b = c.spawn(t, package="encoders_py")
            for text in ("Hello, World!", "SOS", ""):
                assert c.ask(a, text) == c.ask(b, text)


def test_errors_carry_the_protocol_code(system):
    with troupe_client.connect(system.where, home=system.home) as c:
        with pytest.raises(TroupeError) as e:
            c.spawn("NoSuchType")
        assert e.value.code == "not_found"
        assert "NoSuchType" in str(e.value)
        with pytest.raises(TroupeError) as e:
            c.load(os.path.join(system.home, "missing.tpkg"))
        assert e.value.code in ("not_found", "io")
        with pytest.raises(TroupeError) as e:
            c.chgcap("remove", "no_such_capability")
        assert e.value.code == "not_found"
        with pytest.raises(TroupeError) as e:
            c.call("no_such_command")
        assert e.value.code == "invalid_argument"


def test_chgcap_and_systems(system):
    with troupe_client.connect(system.where, home=system.home) as c:
        assert c.chgcap("add", "gpu")["gpu"] is True
        assert c.chgcap("set", "gpu_mem", 16)["gpu_mem"] == 16
        assert "gpu" not in c.chgcap("remove", "gpu")
        s = c.systems()
        assert s["mode"] == "leader"
        assert s["is_leader"] is True
        assert len(s["systems"]) == 1


def test_nothing_listening_is_unavailable(tmp_path):
    with troupe_client.connect("127.0.0.1:9", home=str(tmp_path)) as c:
        with pytest.raises(TroupeError) as e:
            c.call("status", timeout=0.3)
        assert e.value.code == "unavailable"


def test_system_endpoint():
    assert troupe_client.system_endpoint("1900") == "tcp://127.0.0.1:1900"
    assert troupe_client.system_endpoint("10.0.0.2:7") == "tcp://10.0.0.2:7"
    with pytest.raises(ValueError):
        troupe_client.system_endpoint("host:port")


def test_curve_over_tcp_with_a_client_key_and_roles(system):
    key = system.troupe("keygen", "--client", "--json")
    assert key.returncode == 0, key.stderr
    public = __import__("json").loads(key.stdout)["public_key"]
    assert system.troupe("trust-client", "py", public, "--role", "read").returncode == 0
    with troupe_client.connect(system.where, home=system.home, tcp_only=True) as c:
        assert c.endpoint == "tcp://" + system.where
        assert c.status()["port"] == system.port  # read may ask status
        with pytest.raises(TroupeError) as e:
            c.chgcap("add", "gpu")  # but not change anything
        assert e.value.code == "refused"
        assert "admin role" in str(e.value)
    assert system.troupe("trust-client", "py", public, "--role", "admin").returncode == 0
    with troupe_client.connect(system.where, home=system.home, tcp_only=True) as c:
        assert c.chgcap("add", "gpu")["gpu"] is True
