"""musejax.host: one CPU device per core before JAX starts, overridable, and a no-op once the count is chosen;
the malloc setting.

The count is fixed when JAX starts, so each case runs in a fresh Python process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from child_env import child_env
from musejax.cli import main as cli_main


def run_python(code: str, **env: str) -> str:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=child_env(JAX_PLATFORMS="cpu", **env),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


def test_count_from_the_environment_before_jax_is_imported():
    out = run_python("""
        from musejax.host import use_every_cpu_core
        assert use_every_cpu_core() == 3
        import jax
        assert jax.device_count() == 3, jax.devices()
        assert use_every_cpu_core() is None  # chosen already
        print("OK")
    """, MUSEJAX_CPU_DEVICES="3")
    assert "OK" in out


def test_one_device_per_core_when_jax_is_imported_but_not_started():
    out = run_python("""
        import jax
        from musejax.host import cpu_core_count, use_every_cpu_core
        assert use_every_cpu_core() == cpu_core_count()
        assert jax.device_count() == cpu_core_count(), jax.devices()
        print("OK")
    """)
    assert "OK" in out


def test_xla_flags_win_and_a_started_jax_is_left_alone():
    out = run_python("""
        from musejax.host import use_every_cpu_core
        assert use_every_cpu_core() is None
        import jax
        assert jax.device_count() == 4, jax.devices()
        print("OK")
    """, XLA_FLAGS="--xla_force_host_platform_device_count=4", MUSEJAX_CPU_DEVICES="3")
    assert "OK" in out
    out = run_python("""
        import jax
        jax.devices()  # JAX has started with its default: one CPU device
        from musejax.host import use_every_cpu_core
        assert use_every_cpu_core() is None and jax.device_count() == 1
        print("OK")
    """, MUSEJAX_CPU_DEVICES="3")
    assert "OK" in out


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_count_is_a_one_line_command_error(value, monkeypatch, capsys):
    monkeypatch.setenv("MUSEJAX_CPU_DEVICES", value)
    assert cli_main(["sample", "--run", "no-such-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"musejax sample: error: MUSEJAX_CPU_DEVICES={value!r}: expected a whole number >= 1", err


def test_malloc_keeps_large_freed_blocks_unless_turned_off():
    out = run_python("from musejax.host import tune_host_malloc; print(tune_host_malloc())")
    glibc = sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION") is not None
    assert out.strip() == str(glibc)
    assert run_python("from musejax.host import tune_host_malloc; print(tune_host_malloc())",
                      MUSEJAX_TUNE_MALLOC="0").strip() == "False"
