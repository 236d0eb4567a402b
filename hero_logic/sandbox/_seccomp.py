"""The seccomp filter of the namespace tiers: deny what flows never need.

Built once at start-up with libseccomp (through ``pyseccomp``) and exported as BPF, which
bwrap loads right before it executes the flow (``--seccomp FD``). The policy is a deny list
over an allow-by-default filter: Python and its libraries keep working, while the calls that
serve only to attack the kernel or leave the sandbox fail with EPERM:

* tracing and reading other processes: ptrace, process_vm_readv/writev;
* mounts and namespaces: mount, umount2, pivot_root, chroot, the new mount API, unshare,
  setns, and clone with any CLONE_NEW* flag; clone3 answers ENOSYS (its flags hide in
  memory a filter cannot read), so the C library falls back to clone;
* kernel attack surface: bpf, keyctl/add_key/request_key, io_uring_*, perf_event_open,
  userfaultfd, open_by_handle_at, module loading, kexec, reboot, swap, acct, quotactl;
* terminal injection: ioctl TIOCSTI and TIOCLINUX, compared on the low 32 bits only
  (``TIOCSTI | 1<<32`` must not slip past, CVE-2019-10063);
* sockets of any family but AF_UNIX (EAFNOSUPPORT); a version that allows the network also
  gets AF_INET, AF_INET6 and AF_NETLINK.

System calls of another ABI (32-bit ``int 0x80``, x32) kill the process: the filter is
written for the native architecture only.
"""

from __future__ import annotations

import errno
import os
import socket
import tempfile

__all__ = ["DENIED_SYSCALLS", "SeccompUnavailable", "build_filter"]

DENIED_SYSCALLS = (
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "unshare",
    "setns",
    "bpf",
    "keyctl",
    "add_key",
    "request_key",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "perf_event_open",
    "userfaultfd",
    "open_by_handle_at",
    "name_to_handle_at",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "syslog",
    "vhangup",
)

CLONE_NEW_FLAGS = (
    0x00020000,  # CLONE_NEWNS
    0x02000000,  # CLONE_NEWCGROUP
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x10000000,  # CLONE_NEWUSER
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
)
TIOCSTI = 0x5412
TIOCLINUX = 0x541C
_AF_MAX = 46
_ALLOWED_FAMILIES = (socket.AF_UNIX,)
_NETWORK_FAMILIES = (socket.AF_UNIX, socket.AF_INET, socket.AF_INET6, 16)  # 16: AF_NETLINK


class SeccompUnavailable(RuntimeError):
    """libseccomp or its binding cannot be loaded, or the filter cannot be built."""


def build_filter(*, allow_network: bool) -> bytes:
    """The BPF program of the policy above (raises SeccompUnavailable)."""
    try:
        import pyseccomp as sc
    except (ImportError, RuntimeError, OSError) as exc:
        msg = (
            f"the seccomp binding cannot be loaded ({exc}): install Debian's libseccomp2 and "
            "the pyseccomp package"
        )
        raise SeccompUnavailable(msg) from None
    try:
        filt = sc.SyscallFilter(sc.ALLOW)
        deny = sc.ERRNO(errno.EPERM)
        for name in DENIED_SYSCALLS:
            filt.add_rule(deny, name)
        for flag in CLONE_NEW_FLAGS:
            filt.add_rule(deny, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
        filt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
        for request in (TIOCSTI, TIOCLINUX):
            filt.add_rule(deny, "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, request))
        allowed = _NETWORK_FAMILIES if allow_network else _ALLOWED_FAMILIES
        no_family = sc.ERRNO(errno.EAFNOSUPPORT)
        for family in range(_AF_MAX):
            if family not in allowed:
                filt.add_rule(no_family, "socket", sc.Arg(0, sc.EQ, family))
        filt.add_rule(no_family, "socket", sc.Arg(0, sc.GE, _AF_MAX))
        with tempfile.TemporaryFile() as out:
            filt.export_bpf(out)
            out.seek(0)
            return out.read()
    except (OSError, ValueError, RuntimeError) as exc:
        msg = f"the seccomp filter cannot be built: {exc}"
        raise SeccompUnavailable(msg) from None


def filter_fd(program: bytes) -> int:
    """A pipe's read end holding ``program`` (for ``bwrap --seccomp FD``); the caller owns it."""
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, program)
    finally:
        os.close(write_end)
    return read_end
