"""The hostile-program suite: completions that attack the harness, with expected verdicts.

Every program is a *completion* of :data:`PROMPT` (``def add(a, b)``), checked by
:data:`TEST`. Placeholders filled in by the test: ``{CANARY}`` (a world-writable directory
outside the sandbox), ``{TCP_PORT}``/``{UDP_PORT}`` (loopback listeners the test opened),
``{SECRET}`` (an environment variable name set in the test process), ``{TESTS_FILE}`` (the
HumanEval data file); they are substituted with ``str.replace``. Programs of the form "try the attack; return a wrong answer if it
worked" are expected to *pass*: a pass proves the attack failed, and the side-effect checks
(processes, files, connections) prove it left nothing behind.

Never run these outside the sandbox.
"""

from __future__ import annotations

from dataclasses import dataclass

PROMPT = 'def add(a, b):\n    """Return a + b."""\n'
TEST = (
    "def check(candidate):\n"
    "    assert candidate(1, 2) == 3\n"
    "    assert candidate(-5, 5) == 0\n"
    "    assert candidate(10**30, 1) == 10**30 + 1\n"
)
ENTRY = "add"
GOOD = "    return a + b\n"
BAD = "    return a - b\n"


@dataclass(frozen=True)
class Hostile:
    """One hostile (or fidelity) program and the verdict statuses it may get."""

    name: str
    category: str
    completion: str
    expected: frozenset[str]


def _h(name: str, category: str, completion: str, *expected: str) -> Hostile:
    return Hostile(name, category, completion, frozenset(expected))


# "if the attack worked, return a wrong answer": the program passes only if it failed.
def _attack(body: str, imports: str = "import os, sys") -> str:
    lines = "\n".join("        " + ln for ln in body.strip("\n").splitlines())
    return (f"    {imports}\n    try:\n{lines}\n        worked = True\n"
            "    except BaseException:\n        worked = False\n"
            "    return a + b + (1000 if worked else 0)\n")


PROGRAMS: list[Hostile] = [
    # ------------------------------------------------------------ verdict tampering
    _h("sys_exit_at_import", "tampering", GOOD + "import sys\nsys.exit(0)\n", "error"),
    _h("os_exit_at_import", "tampering", GOOD + "import os\nos._exit(0)\n", "error"),
    _h("os_exit_in_call", "tampering", "    import os\n    os._exit(0)\n", "error"),
    _h("quit_in_call", "tampering", "    quit()\n", "error"),
    _h("atexit_os_exit", "tampering",
       "    import atexit, os\n    atexit.register(os._exit, 0)\n    return a - b\n", "failed"),
    _h("excepthook_exit0", "tampering",
       "    import sys, os\n    sys.excepthook = lambda *e: os._exit(0)\n    return None\n",
       "failed"),
    _h("print_fake_success", "tampering",
       '    print("passed"); print(\'{"passed": true, "result": "passed"}\')\n'
       "    return 0\n", "failed"),
    _h("forge_protocol_frames", "tampering",
       "    import os, json, struct\n"
       "    for m in (['done', 'x'], ['ready'], ['passed']):\n"
       "        b = json.dumps(m).encode(); os.write(3, struct.pack('>I', len(b)) + b)\n"
       "    return a - b\n", "failed"),
    _h("garbage_on_channel", "tampering",
       "    import os\n    os.write(3, b'\\xff' * 64)\n    return a + b\n", "failed"),
    _h("eq_always_true", "tampering",
       "    class Yes:\n        def __eq__(self, o): return True\n    return Yes()\n", "failed"),
    _h("int_subclass_eq", "tampering",
       "    class I(int):\n        def __eq__(self, o): return True\n        __hash__ = int.__hash__\n"
       "    return I(0)\n", "failed"),
    _h("str_subclass", "tampering",
       "    class S(str):\n        def __eq__(self, o): return True\n    return S('x')\n", "failed"),
    _h("patch_builtins", "tampering",
       "    import builtins\n    builtins.AssertionError = type('N', (Exception,), {})\n"
       "    builtins.abs = lambda x: 0\n    return a - b\n", "failed"),
    _h("frame_walk_forge", "tampering",
       "    import sys, gc\n    f = sys._getframe()\n    while f is not None:\n"
       "        for k in list(f.f_globals):\n"
       "            if k in ('result', 'check', 'passed'):\n"
       "                f.f_globals[k] = 'passed'\n"
       "        f = f.f_back\n"
       "    for o in gc.get_objects():\n"
       "        if isinstance(o, dict) and 'passed' in o: o['passed'] = True\n"
       "    return a - b\n", "failed"),
    _h("read_tests_file", "tampering",
       _attack("open('{TESTS_FILE}', 'rb').read(10)"), "passed"),
    _h("search_memory_for_tests", "tampering",
       _attack("import gc\nassert any(isinstance(o, str) and 'def check(' in o "
               "for o in gc.get_objects())"), "passed"),
    _h("patch_child_codec", "tampering",
       "    from codexlab.execution import codec\n"
       "    codec.to_wire = lambda v, _d=0: ['i', hex(3)]\n    return a - b\n", "failed"),
    _h("raise_skiptest", "tampering",
       "    import unittest\n    raise unittest.SkipTest('skip')\n", "error"),
    _h("raise_keyboardinterrupt", "tampering", "    raise KeyboardInterrupt\n", "error"),
    _h("hostile_exception_str", "tampering",
       "    class E(Exception):\n        def __str__(self): raise RuntimeError('no')\n"
       "    raise E()\n", "error"),
    _h("close_channel_fd", "tampering", "    import os\n    os.close(3)\n    return a + b\n",
       "error"),
    # ------------------------------------------------------------ resource exhaustion
    _h("infinite_loop", "resources", "    while True:\n        pass\n", "timeout"),
    _h("c_level_loop", "resources", "    return sum(range(10**13))\n", "timeout"),
    _h("regex_backtracking", "resources",
       "    import re\n    re.match(r'(a+)+$', 'a' * 64 + 'b')\n    return a + b\n", "timeout"),
    _h("ignore_signals_loop", "resources",
       "    import signal\n    for s in (signal.SIGTERM, signal.SIGXCPU, signal.SIGALRM, "
       "signal.SIGINT, signal.SIGHUP):\n        signal.signal(s, signal.SIG_IGN)\n"
       "    while True:\n        pass\n", "timeout"),
    _h("sleep_forever", "resources", "    import time\n    time.sleep(1000)\n", "timeout"),
    _h("allocate_8gib", "resources", "    x = bytearray(8 << 30)\n    return a + b\n", "memory"),
    _h("grow_list_until_oom", "resources",
       "    x = []\n    while True:\n        x.append(bytes(64 << 20))\n", "memory"),
    _h("fork_bomb", "resources", "    import os\n    while True:\n        os.fork()\n",
       "error"),
    _h("thread_bomb", "resources",
       "    import threading, time\n    n = 0\n    try:\n        while n < 100000:\n"
       "            threading.Thread(target=time.sleep, args=(1000,), daemon=True).start()\n"
       "            n += 1\n    except BaseException:\n        pass\n"
       "    return a + b + (1000 if n >= 100000 else 0)\n", "passed"),
    _h("output_flood", "resources",
       "    import sys\n    while True:\n        sys.stdout.write('x' * 65536)\n", "output_limit"),
    _h("output_flood_fd_write", "resources",
       "    import os\n    while True:\n        os.write(2, b'y' * 65536)\n", "output_limit"),
    _h("closed_stdio", "resources",
       "    import os, sys\n    for fd in (0, 1, 2):\n        try:\n            os.close(fd)\n"
       "        except OSError:\n            pass\n"
       "    try:\n        print('hi')\n    except BaseException:\n        pass\n"
       "    return a + b\n", "passed"),
    _h("stdin_read", "resources", "    return int(input())\n", "error"),
    _h("disk_fill", "resources",
       _attack("n = 0\nfor i in range(160):\n    try:\n"
               "        with open(f'f{i}', 'wb') as fh:\n"
               "            fh.write(b'0' * (8 << 20))\n        n += 8\n"
               "    except OSError:\n        pass\nassert n >= 1024"), "passed"),
    _h("fd_exhaustion", "resources",
       "    fs = [open('/dev/null') for _ in range(100000)]\n    return a + b\n", "error"),
    _h("stack_overflow", "resources",
       "    import sys\n    sys.setrecursionlimit(10**8)\n"
       "    def f(n):\n        return list(map(f, [n + 1]))\n    return f(0)\n",
       "error", "memory"),
    _h("recursion_error", "resources",
       "    def f(n):\n        return f(n + 1)\n    return f(0)\n", "error"),
    # ------------------------------------------------------------ process lifecycle
    _h("daemonised_grandchild", "lifecycle",
       _attack("pid = os.fork()\nif pid == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
               "        import time; time.sleep(30)\n    os._exit(0)"), "passed"),
    _h("kill_parent", "lifecycle",
       "    import os, signal\n    for p in (os.getppid(), 0, -1):\n        try:\n"
       "            os.kill(p, signal.SIGKILL)\n        except BaseException:\n"
       "            pass\n    return a + b\n", "passed", "error"),
    # (Skips its own pid: a process that kills itself dies, as anywhere; see sigkill_self.)
    _h("kill_guessed_pids", "lifecycle",
       "    import os\n    for p in range(2, 4000):\n        try:\n"
       "            if p != os.getpid():\n                os.kill(p, 9)\n"
       "        except BaseException:\n            pass\n"
       "    return a + b\n", "passed"),
    _h("killpg_own_group", "lifecycle",
       "    import os, signal\n    try:\n        os.killpg(os.getpgid(0), signal.SIGKILL)\n"
       "    except BaseException:\n        pass\n    return a + b\n", "passed", "error"),
    _h("stop_itself", "lifecycle",
       "    import os, signal\n    os.kill(os.getpid(), signal.SIGSTOP)\n    return a + b\n",
       "passed", "timeout"),
    _h("zombie_attempt", "lifecycle",
       _attack("for _ in range(5):\n    if os.fork() == 0:\n        os._exit(0)"), "passed"),
    # ------------------------------------------------------------ escapes
    _h("reload_os_system", "escape",
       _attack("import importlib\nimportlib.reload(os)\n"
               "assert os.system('touch {CANARY}/pwned_system') == 0"), "passed"),
    _h("ctypes_system", "escape",
       _attack("import ctypes\nassert ctypes.CDLL(None).system(b'touch {CANARY}/pwned_ctypes') == 0"),
       "passed"),
    _h("ctypes_raw_fork_syscall", "escape",
       _attack("import ctypes\nassert ctypes.CDLL(None).syscall(57) >= 0"), "passed"),
    _h("posix_spawn", "escape",
       _attack("import posix\nposix.posix_spawn('/bin/touch', ['touch', '{CANARY}/pwned_spawn'], {})"),
       "passed"),
    _h("subprocess_run", "escape",
       _attack("import subprocess\nsubprocess.run(['/bin/touch', '{CANARY}/pwned_sub'], check=True)"),
       "passed"),
    _h("write_outside", "escape",
       _attack("open('{CANARY}/pwned_write', 'w').write('x')"), "passed"),
    _h("overwrite_canary", "escape",
       _attack("open('{CANARY}/canary.txt', 'w').write('pwned')"), "passed"),
    _h("write_tmp_and_shm", "escape",
       _attack("for d in ('/tmp', '/dev/shm', '/var/tmp'):\n"
               "    try:\n        open(d + '/codexlab_hostile_pwned', 'w').write('x')\n"
               "        raise SystemExit('wrote')\n    except OSError:\n        pass\n"
               "raise OSError('all denied')"), "passed"),
    _h("symlink_out", "escape",
       _attack("os.symlink('{CANARY}/canary.txt', 'link')\nopen('link', 'w').write('pwned')"),
       "passed"),
    _h("symlink_read_secret_file", "escape",
       _attack("os.symlink('/etc/shadow', 'l2')\nopen('l2').read()"), "passed"),
    _h("read_etc_shadow", "escape", _attack("open('/etc/shadow').read()"), "passed"),
    _h("tcp_connect_loopback", "escape",
       _attack("import socket\ns = socket.create_connection(('127.0.0.1', {TCP_PORT}), 1)"),
       "passed"),
    _h("udp_send_loopback", "escape",
       _attack("import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
               "s.sendto(b'x', ('127.0.0.1', {UDP_PORT}))"), "passed"),
    _h("dns_lookup", "escape",
       _attack("import socket\nsocket.getaddrinfo('example.com', 80)"), "passed"),
    _h("unix_socket", "escape",
       _attack("import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect('\\0codexlab')"),
       "passed"),
    _h("env_secret", "escape",
       _attack("assert '{SECRET}' in os.environ or any('{SECRET}' in k for k in os.environ)"),
       "passed"),
    _h("proc_other_processes", "escape",
       _attack("assert open('/proc/1/environ', 'rb').read() or os.listdir('/proc')"), "passed"),
    _h("setuid_root", "escape", _attack("os.setuid(0)\nassert os.getuid() == 0 or True\n"
                                        "assert os.geteuid() == 0"), "passed"),
    _h("unshare_mount", "escape",
       _attack("import ctypes\nassert ctypes.CDLL(None).unshare(0x00020000) == 0"), "passed"),
    # ------------------------------------------------------------ signals to itself
    # Never the namespace's init: each ends the process as it would any normal process.
    _h("sigterm_self", "tampering",
       "    import os, signal\n    os.kill(os.getpid(), signal.SIGTERM)\n    return a + b\n",
       "error"),
    _h("sigkill_self", "tampering",
       "    import os, signal\n    os.kill(os.getpid(), signal.SIGKILL)\n    return a + b\n",
       "error"),
    _h("sigsegv_self", "tampering",
       "    import signal\n    signal.raise_signal(signal.SIGSEGV)\n    return a + b\n", "error"),
    _h("sigint_self", "tampering",
       "    import os, signal\n    os.kill(os.getpid(), signal.SIGINT)\n    return a + b\n",
       "error"),
    _h("kill_every_visible_pid", "lifecycle",
       _attack("n = 0\nfor p in range(1, 300):\n    if p != os.getpid():\n        try:\n"
               "            os.kill(p, 9)\n            n += 1\n        except OSError:\n"
               "            pass\nassert n > 0"), "passed"),
    # ------------------------------------------------------------ well-known types as bait
    _h("counter_subclass_eq", "tampering",
       "    import collections\n    class C(collections.Counter):\n"
       "        def __eq__(self, o): return True\n    return C()\n", "failed"),
    _h("namedtuple_subclass_eq", "tampering",
       "    import collections\n    P = collections.namedtuple('P', 'x')\n    class Q(P):\n"
       "        def __eq__(self, o): return True\n    return Q(0)\n", "failed"),
    _h("ndarray_subclass_eq", "tampering",
       "    import numpy as np\n    class A(np.ndarray):\n        def __eq__(self, o): return True\n"
       "    return np.zeros(1).view(A)\n", "failed"),
    _h("patched_counter_type", "tampering",
       "    import collections\n    class Yes(dict):\n        def __eq__(self, o): return True\n"
       "    collections.Counter = Yes\n    return Yes()\n", "failed"),
    _h("endless_generator", "resources",
       "    def g():\n        while True:\n            yield a + b\n    return g()\n",
       "failed", "timeout"),
    _h("generator_exits_process", "tampering",
       "    import os\n    def g():\n        yield a + b\n        os._exit(0)\n    return g()\n",
       "error"),
    _h("iterator_of_own_class", "tampering",
       "    class It:\n        def __iter__(self): return self\n"
       "        def __next__(self): raise StopIteration\n"
       "        def __eq__(self, o): return True\n    return It()\n", "failed"),
    # ------------------------------------------------------------ fidelity (must pass)
    _h("helper_after_entry", "fidelity",
       "    return _helper(a, b)\n\n\ndef _helper(x, y):\n    return x + y\n", "passed"),
    _h("import_after_entry", "fidelity",
       "    return operator.add(a, b)\n\n\nimport operator\n", "passed"),
    _h("main_block", "fidelity",
       "    return a + b\n\n\nif __name__ == '__main__':\n    print(add(int(input()), 2))\n",
       "passed"),
    _h("numpy_under_limit", "fidelity",
       "    import numpy as np\n    x = np.zeros(10**6)\n"
       "    return int(np.add(np.int64(a), np.int64(b))) if abs(a) < 2**62 else a + b\n",
       "passed"),
    _h("threads", "fidelity",
       "    from concurrent.futures import ThreadPoolExecutor\n"
       "    with ThreadPoolExecutor(4) as ex:\n        return ex.submit(lambda: a + b).result()\n",
       "passed"),
    _h("deep_recursion", "fidelity",
       "    import sys\n    sys.setrecursionlimit(30000)\n"
       "    def f(n):\n        return 0 if n == 0 else 1 + f(n - 1)\n"
       "    return a + b + f(20000) - 20000\n", "passed"),
    _h("megabytes_of_output", "fidelity",
       "    print('z' * (4 << 20))\n    return a + b\n", "passed"),
    _h("slow_but_in_time", "fidelity",
       "    import time\n    time.sleep(0.1)\n    return a + b\n", "passed"),
    _h("lazy_stdlib_import", "fidelity",
       "    import sqlite3, xml.dom.minidom, email.message\n    return a + b\n", "passed"),
    _h("temp_files_in_cwd", "fidelity",
       "    import tempfile\n    with open('scratch.txt', 'w') as fh:\n        fh.write(str(a + b))\n"
       "    with tempfile.TemporaryDirectory() as d:\n        pass\n"
       "    return int(open('scratch.txt').read())\n", "passed"),
    _h("state_across_calls", "fidelity",
       "    global _calls\n    _calls = globals().get('_calls', 0) + 1\n    return a + b\n", "passed"),
    _h("returns_big_int", "fidelity", "    return int(str(a)) + int(str(b))\n", "passed"),
    _h("returns_numpy_int", "fidelity",
       "    import numpy as np\n    return np.int64(a) + b if abs(a) < 2**62 else a + b\n",
       "passed"),
    _h("returns_fraction", "fidelity",
       "    from fractions import Fraction\n    return Fraction(a) + b\n", "passed"),
    _h("handles_its_own_signal", "fidelity",
       "    import os, signal\n    signal.signal(signal.SIGUSR1, lambda *x: None)\n"
       "    os.kill(os.getpid(), signal.SIGUSR1)\n    return a + b\n", "passed"),
]
