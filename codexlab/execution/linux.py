"""Thin ctypes wrappers over the Linux isolation primitives the sandbox uses.

What it is for: Landlock (file system, TCP and signal scoping), seccomp-BPF loading,
``prctl`` flags, ``unshare``/``mount`` for namespaces, and ``capset`` for keeping a single
capability across a uid drop. Every function raises ``OSError`` on failure so callers can
probe a layer by trying it. Nothing here decides policy; :mod:`codexlab.execution.zygote`
does.

What it is not for: other operating systems. On macOS or where ``libc`` lacks a function the
probes report the layer missing and the sandbox degrades (with a warning).
"""

from __future__ import annotations

import ctypes
import errno
import os

_libc: ctypes.CDLL | None
try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - non-glibc oddities
    _libc = None

# Landlock and several other syscalls share numbers across the 64-bit architectures
# (they were added after the unified syscall table).
SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446
# os.uname, not platform.machine: platform is one more module in every forked zygote.
_SYS_CAPSET = {"x86_64": 126, "aarch64": 91}.get(os.uname().machine)

PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
SECCOMP_MODE_FILTER = 2

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUTS = 0x04000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REC = 0x4000
MS_PRIVATE = 1 << 18

CAP_DAC_READ_SEARCH = 2

# Landlock access rights (uapi/linux/landlock.h).
LL_FS_EXECUTE = 1 << 0
LL_FS_WRITE_FILE = 1 << 1
LL_FS_READ_FILE = 1 << 2
LL_FS_READ_DIR = 1 << 3
LL_FS_REMOVE_DIR = 1 << 4
LL_FS_REMOVE_FILE = 1 << 5
LL_FS_MAKE_CHAR = 1 << 6
LL_FS_MAKE_DIR = 1 << 7
LL_FS_MAKE_REG = 1 << 8
LL_FS_MAKE_SOCK = 1 << 9
LL_FS_MAKE_FIFO = 1 << 10
LL_FS_MAKE_BLOCK = 1 << 11
LL_FS_MAKE_SYM = 1 << 12
LL_FS_REFER = 1 << 13  # ABI 2
LL_FS_TRUNCATE = 1 << 14  # ABI 3
LL_FS_IOCTL_DEV = 1 << 15  # ABI 5
LL_NET_BIND_TCP = 1 << 0  # ABI 4
LL_NET_CONNECT_TCP = 1 << 1  # ABI 4
LL_SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
LL_SCOPE_SIGNAL = 1 << 1  # ABI 6
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1

_FILE_RIGHTS = LL_FS_EXECUTE | LL_FS_WRITE_FILE | LL_FS_READ_FILE | LL_FS_TRUNCATE | LL_FS_IOCTL_DEV


def _need_libc() -> ctypes.CDLL:
    if _libc is None:
        raise OSError(errno.ENOSYS, "libc not available through ctypes")
    return _libc


def _check(rc: int) -> int:
    if rc < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return rc


def syscall(nr: int, *args: object) -> int:
    """Call a raw syscall, raising ``OSError`` on a negative return."""
    return _check(_need_libc().syscall(ctypes.c_long(nr), *args))


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    """Call ``prctl(2)``."""
    libc = _need_libc()
    return _check(
        libc.prctl(
            ctypes.c_int(option),
            ctypes.c_ulong(arg2),
            ctypes.c_ulong(arg3),
            ctypes.c_ulong(arg4),
            ctypes.c_ulong(arg5),
        )
    )


def set_name(name: bytes) -> None:
    """Set the calling thread's name (``/proc/PID/comm``, at most 15 bytes)."""
    _check(_need_libc().prctl(ctypes.c_int(15), ctypes.c_char_p(name[:15]), ctypes.c_ulong(0),
                              ctypes.c_ulong(0), ctypes.c_ulong(0)))


def unshare(flags: int) -> None:
    """Call ``unshare(2)``."""
    _check(_need_libc().unshare(ctypes.c_int(flags)))


def setns(fd: int, nstype: int) -> None:
    """Call ``setns(2)``."""
    _check(_need_libc().setns(ctypes.c_int(fd), ctypes.c_int(nstype)))


def mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    """Call ``mount(2)``."""
    libc = _need_libc()
    _check(
        libc.mount(
            source.encode(),
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        )
    )


# ---------------------------------------------------------------- Landlock


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1  # the kernel struct is __attribute__((packed))
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_abi() -> int:
    """Return the Landlock ABI version the kernel offers (0 when unavailable)."""
    try:
        return syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0),
                       ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    except OSError:
        return 0


def _fs_rights(abi: int) -> int:
    rights = (1 << 13) - 1  # EXECUTE .. MAKE_SYM (ABI 1)
    if abi >= 2:
        rights |= LL_FS_REFER
    if abi >= 3:
        rights |= LL_FS_TRUNCATE
    if abi >= 5:
        rights |= LL_FS_IOCTL_DEV
    return rights


def landlock_ruleset(read_paths: list[str], write_paths: list[str], rw_files: list[str],
                     abi: int) -> int:
    """Create a Landlock ruleset fd: read-only ``read_paths``, full ``write_paths``.

    Everything else in the file system is denied (read and write); with ABI ≥ 4 all TCP bind
    and connect is denied; with ABI ≥ 6 signals to and abstract unix sockets of processes
    outside the domain are denied. Execution is not granted anywhere (seccomp also denies
    ``execve``). Paths that do not exist are skipped.

    Args:
        read_paths: Directories or files readable (and, for directories, listable); a
            ``"dir:"`` prefix grants only listing of that directory tree.
        write_paths: Directories with every file-system right beneath them.
        rw_files: Single files (e.g. ``/dev/null``) readable and writable.
        abi: The kernel's Landlock ABI (from :func:`landlock_abi`).

    Returns:
        The ruleset file descriptor, to be passed to :func:`landlock_restrict` in the child.
    """
    fs = _fs_rights(abi)
    attr = _RulesetAttr(fs, 0, 0)
    size = ctypes.sizeof(ctypes.c_uint64)  # ABI 1-3 struct holds only handled_access_fs
    if abi >= 4:
        attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP
        size = 2 * ctypes.sizeof(ctypes.c_uint64)
    if abi >= 6:
        attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL
        size = ctypes.sizeof(_RulesetAttr)
    rfd = syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size),
                  ctypes.c_uint32(0))
    read_rights = LL_FS_READ_FILE | LL_FS_READ_DIR
    try:
        for paths, rights in ((read_paths, read_rights), (write_paths, fs & ~LL_FS_EXECUTE),
                              (rw_files, LL_FS_READ_FILE | LL_FS_WRITE_FILE | LL_FS_TRUNCATE)):
            for p in paths:
                if p.startswith("dir:"):  # listable only (imports need to list the dir)
                    p, rights_here = p[4:], LL_FS_READ_DIR
                else:
                    rights_here = rights
                try:
                    pfd = os.open(p, os.O_PATH | os.O_CLOEXEC)
                except OSError:
                    continue
                try:
                    allowed = rights_here & fs
                    if not os.path.isdir(p):
                        allowed &= _FILE_RIGHTS  # files accept only file rights (else EINVAL)
                    rule = _PathBeneathAttr(allowed, pfd)
                    syscall(SYS_LANDLOCK_ADD_RULE, ctypes.c_int(rfd),
                            ctypes.c_int(LANDLOCK_RULE_PATH_BENEATH), ctypes.byref(rule),
                            ctypes.c_uint32(0))
                finally:
                    os.close(pfd)
    except BaseException:
        os.close(rfd)
        raise
    return rfd


def landlock_restrict(ruleset_fd: int) -> None:
    """Enforce a ruleset on the calling thread (needs ``no_new_privs`` first)."""
    syscall(SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(ruleset_fd), ctypes.c_uint32(0))


# ---------------------------------------------------------------- seccomp


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class SeccompProgram:
    """A compiled BPF program kept in memory, loadable in microseconds after ``fork``.

    Building the filter with libseccomp costs about a millisecond; doing it once in the
    fork-server and only calling ``prctl`` in each child keeps that out of the per-sample
    cost.
    """

    def __init__(self, bpf: bytes) -> None:
        if not bpf or len(bpf) % 8:
            raise ValueError("BPF program must be a non-empty multiple of 8 bytes")
        self._buf = ctypes.create_string_buffer(bpf, len(bpf))
        self._prog = _SockFprog(len(bpf) // 8, ctypes.cast(self._buf, ctypes.c_void_p))

    def load(self) -> None:
        """Install the filter on the calling thread (``no_new_privs`` must be set)."""
        _check(_need_libc().prctl(ctypes.c_int(PR_SET_SECCOMP),
                                  ctypes.c_ulong(SECCOMP_MODE_FILTER),
                                  ctypes.byref(self._prog), ctypes.c_ulong(0),
                                  ctypes.c_ulong(0)))


#: Syscalls denied with EPERM in the sandbox (names unknown to libseccomp are skipped).
DENIED_SYSCALLS = (
    "socket", "socketcall", "execve", "execveat", "fork", "vfork", "ptrace",
    "process_vm_readv", "process_vm_writev", "mount", "umount2", "pivot_root", "chroot",
    "unshare", "setns", "bpf", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "keyctl", "add_key", "request_key", "perf_event_open", "kexec_load", "kexec_file_load",
    "init_module", "finit_module", "delete_module", "open_by_handle_at", "name_to_handle_at",
    "userfaultfd", "quotactl", "swapon", "swapoff", "reboot", "sethostname", "setdomainname",
    "acct", "settimeofday", "clock_settime", "adjtimex", "iopl", "ioperm", "pidfd_getfd",
    "syslog", "mknod", "mknodat", "fanotify_init", "move_mount", "open_tree", "fsopen",
    "fsmount", "fspick", "mount_setattr", "lookup_dcookie", "kcmp",
    # SysV IPC: objects outlive the process, and a slot's samples share one IPC namespace
    # and uid, so a segment left by one sample would be readable by the next.
    "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semctl",
    "msgget", "msgsnd", "msgrcv", "msgctl", "ipc",
)


def build_seccomp_bpf(deny_fork: bool = True) -> bytes:
    """Compile the sandbox's deny-list filter to raw BPF with libseccomp (pyseccomp).

    Denies (EPERM) every syscall in :data:`DENIED_SYSCALLS`, which includes *all* ``socket``
    creation (so TCP, UDP, DNS and unix sockets are unavailable; the inherited channel to the
    checker keeps working), ``execve``, and — with ``deny_fork`` — ``clone`` without
    ``CLONE_THREAD`` (threads still work, processes cannot be created) plus ``clone3``
    (ENOSYS, so glibc falls back to ``clone``).

    Called in the pool's process, not in the fork-server: pyseccomp imports
    ``ctypes.util``, which imports ``subprocess`` and ``threading``, and ``threading``'s
    at-fork hook alone costs ~0.45 ms of CPU in every forked child (measured here).

    Raises:
        ImportError: pyseccomp or libseccomp is missing.
        OSError: libseccomp failed.
    """
    import tempfile

    import pyseccomp as sc  # type: ignore[import-untyped]

    f = sc.SyscallFilter(sc.ALLOW)
    for name in DENIED_SYSCALLS:
        if name in ("fork", "vfork") and not deny_fork:
            continue
        try:
            f.add_rule(sc.ERRNO(errno.EPERM), name)
        except (OSError, ValueError, RuntimeError):
            continue  # not a syscall on this architecture
    if deny_fork:
        clone_thread = 0x00010000
        f.add_rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, clone_thread, 0))
        try:
            f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
        except (OSError, ValueError, RuntimeError):
            pass
    with tempfile.TemporaryFile() as fh:
        f.export_bpf(fh)
        fh.seek(0)
        return fh.read()


# ---------------------------------------------------------------- capabilities


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def drop_to_uid(uid: int, gid: int, keep_caps: tuple[int, ...] = ()) -> None:
    """Switch every uid/gid to ``uid``/``gid`` and keep only ``keep_caps`` capabilities.

    Used by a root fork-server's child. ``keep_caps`` exists for one case: the interpreter
    lives under a directory the sandbox uid cannot traverse (e.g. pyenv under ``/root``,
    mode 0700), so the child keeps ``CAP_DAC_READ_SEARCH`` to import modules lazily; Landlock
    still limits what it may read, and seccomp denies ``open_by_handle_at``. The kernel only
    exempts from ``RLIMIT_NPROC`` for ``CAP_SYS_RESOURCE``/``CAP_SYS_ADMIN``, so the process
    limit binds.
    """
    if keep_caps:
        prctl(PR_SET_KEEPCAPS, 1)
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if keep_caps:
        if _SYS_CAPSET is None:
            raise OSError(errno.ENOSYS, "capset number unknown on this architecture")
        mask = 0
        for c in keep_caps:
            mask |= 1 << c
        hdr = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
        data = (_CapData * 2)()
        data[0].effective = data[0].permitted = mask & 0xFFFFFFFF
        syscall(_SYS_CAPSET, ctypes.byref(hdr), ctypes.byref(data))
        prctl(PR_SET_KEEPCAPS, 0)
