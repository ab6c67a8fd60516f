"""``pin_process`` and ``parse_cpu_list``: a worker process moved to the CPUs asked, whole."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bharatsend_core import pin_process
from bharatsend_core.adapters.system import parse_cpu_list
from bharatsend_core.domain.errors import InvalidArgument

linux = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity"), reason="CPU pinning needs Linux's sched_setaffinity"
)


@given(st.sets(st.integers(0, 300), min_size=1))
def test_a_cpu_list_reads_back_as_the_set_it_names(cpus: set[int]) -> None:
    as_items = ",".join(str(c) for c in sorted(cpus))
    assert parse_cpu_list(as_items) == cpus
    low, high = min(cpus), max(cpus)
    assert parse_cpu_list(f"{low}-{high}") == set(range(low, high + 1))


def test_cpu_lists_in_taskset_form() -> None:
    assert parse_cpu_list("1") == {1}
    assert parse_cpu_list(" 0, 2 ") == {0, 2}
    assert parse_cpu_list("0-2,5,7-8") == {0, 1, 2, 5, 7, 8}


@pytest.mark.parametrize(
    "bad", ["", "x", "1,", "-1", "3-1", "1-", "0x1", "1.5", "1 2", "0-99999999", "8192"]
)
def test_a_bad_cpu_list_is_refused_with_the_field_named(bad: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_cpu_list(bad)
    assert caught.value.code == "invalid_argument"
    assert caught.value.field == "cpus"


@linux
@pytest.mark.parametrize("bad", [[], [True], [-1], ["1"], [1.0], [10_000]])
def test_bad_cpus_are_refused_and_nothing_moves(bad: list[object]) -> None:
    before = os.sched_getaffinity(0)
    with pytest.raises(InvalidArgument) as caught:
        pin_process(bad)  # type: ignore[arg-type]
    assert caught.value.field == "cpus"
    assert os.sched_getaffinity(0) == before


_CHILD = textwrap.dedent(
    """
    import json, os, sys, threading
    from bharatsend_core import pin_process

    cpu = int(sys.argv[1])
    hold = threading.Event()
    early = threading.Thread(target=hold.wait)
    early.start()
    pinned = pin_process([cpu])
    late = threading.Thread(target=hold.wait)
    late.start()
    threads = [threading.main_thread(), early, late]
    child = os.popen(sys.executable + " -c 'import os; print(sorted(os.sched_getaffinity(0)))'")
    report = {
        "pinned": sorted(pinned),
        "threads": [sorted(os.sched_getaffinity(t.native_id)) for t in threads],
        "child": child.read().strip(),
    }
    hold.set()
    print(json.dumps(report))
    """
)


@linux
def test_every_thread_and_what_starts_later_run_on_the_cpu_asked() -> None:
    import json

    cpu = max(os.sched_getaffinity(0))
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(cpu)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["pinned"] == [cpu]
    # A thread started before, the caller, and one started after.
    assert report["threads"] == [[cpu], [cpu], [cpu]]
    assert report["child"] == f"[{cpu}]"  # children inherit it too


@linux
def test_run_worker_refuses_bad_cpus_before_starting_anything() -> None:
    import threading

    from bharatsend_core import BharatSend

    with BharatSend.in_memory(key_pepper="a-test-pepper-of-sufficient-length") as bs:
        threads = threading.active_count()
        with pytest.raises(InvalidArgument) as caught:
            bs.run_worker(cpus=[10_000])
        assert caught.value.field == "cpus"
        assert threading.active_count() == threads  # no worker thread was started
