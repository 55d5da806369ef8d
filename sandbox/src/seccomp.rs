//! atr's own seccomp profile: an allowlist of system calls, sent with every container.
//!
//! The engine's default profile changes with its version (Docker 20.10 still allows `ptrace`
//! and `io_uring`) and an operator can replace it; a tool's confinement should not depend on
//! either. This profile allows what language runtimes (static Rust/C, Go, Python) need to
//! compute, read and write files, use threads, time and sockets, and refuses with `EPERM`
//! everything else — notably namespaces (`unshare`, `setns`, `clone` with namespace flags),
//! other processes' memory (`ptrace`, `process_vm_*`), kernel keyrings, `io_uring`, `bpf`,
//! `perf_event_open`, `userfaultfd`, mounts, modules and clocks. `clone3` answers `ENOSYS`,
//! because its flags live in memory a filter cannot read: C libraries then fall back to
//! `clone`, whose flags are checked.
//!
//! Names unknown to an architecture are skipped by the engine's runtime, so one list serves
//! x86_64 and aarch64 (and their 32-bit modes).

use std::sync::OnceLock;

use serde_json::{Value, json};

/// Every call a tool may make, by name (both 64- and 32-bit spellings).
#[rustfmt::skip]
pub const ALLOWED: &[&str] = &[
    // Files and directories.
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2",
    "pwritev2", "open", "openat", "openat2", "close", "close_range", "creat", "lseek", "_llseek",
    "stat", "fstat", "lstat", "newfstatat", "fstatat64", "statx", "stat64", "fstat64", "lstat64",
    "statfs", "fstatfs", "statfs64", "fstatfs64", "access", "faccessat", "faccessat2", "readlink",
    "readlinkat", "getdents", "getdents64", "mkdir", "mkdirat", "rmdir", "unlink", "unlinkat",
    "rename", "renameat", "renameat2", "link", "linkat", "symlink", "symlinkat", "chmod",
    "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat", "chown32",
    "fchown32", "lchown32", "truncate", "ftruncate", "truncate64", "ftruncate64", "fsync",
    "fdatasync", "sync", "syncfs", "sync_file_range", "fallocate", "fadvise64", "fadvise64_64",
    "arm_fadvise64_64", "readahead", "utime", "utimes", "utimensat", "utimensat_time64",
    "futimesat", "umask", "chdir", "fchdir", "getcwd", "dup", "dup2", "dup3", "fcntl", "fcntl64",
    "ioctl", "flock", "pipe", "pipe2", "splice", "tee", "vmsplice", "sendfile", "sendfile64",
    "copy_file_range", "mknod", "mknodat", "getxattr", "lgetxattr", "fgetxattr", "listxattr",
    "llistxattr", "flistxattr", "setxattr", "lsetxattr", "fsetxattr", "removexattr",
    "lremovexattr", "fremovexattr", "inotify_init", "inotify_init1", "inotify_add_watch",
    "inotify_rm_watch", "memfd_create",
    // Waiting for descriptors.
    "select", "_newselect", "pselect6", "pselect6_time64", "poll", "ppoll", "ppoll_time64",
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2",
    "eventfd", "eventfd2", "signalfd", "signalfd4", "timerfd_create", "timerfd_settime",
    "timerfd_gettime", "timerfd_settime64", "timerfd_gettime64",
    // Memory.
    "brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "madvise", "mlock", "mlock2",
    "munlock", "mlockall", "munlockall", "mincore", "msync", "membarrier", "pkey_alloc",
    "pkey_free", "pkey_mprotect", "get_mempolicy", "map_shadow_stack",
    // Processes and threads (`clone` is allowed below, without namespace flags).
    "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid", "waitpid",
    "kill", "tkill", "tgkill", "getpid", "getppid", "gettid", "getpgid", "setpgid", "getpgrp",
    "getsid", "setsid", "set_tid_address", "set_robust_list", "get_robust_list", "futex",
    "futex_time64", "futex_waitv", "rseq", "sched_yield", "sched_getaffinity",
    "sched_setaffinity", "sched_getparam", "sched_setparam", "sched_getscheduler",
    "sched_setscheduler", "sched_get_priority_max", "sched_get_priority_min",
    "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_getattr", "sched_setattr",
    "getpriority", "setpriority", "prctl", "arch_prctl", "capget", "capset", "getrlimit",
    "setrlimit", "prlimit64", "ugetrlimit", "getrusage", "times", "sysinfo", "uname", "getcpu",
    "ioprio_get", "ioprio_set", "set_thread_area", "get_thread_area", "pidfd_open",
    "pidfd_send_signal", "restart_syscall", "seccomp", "landlock_create_ruleset",
    "landlock_add_rule", "landlock_restrict_self",
    // Credentials (without capabilities these only move between ids the process holds).
    "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups", "setuid",
    "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setgroups", "setfsuid",
    "setfsgid", "getuid32", "geteuid32", "getgid32", "getegid32", "getresuid32", "getresgid32",
    "getgroups32", "setuid32", "setgid32", "setreuid32", "setregid32", "setresuid32",
    "setresgid32", "setgroups32", "setfsuid32", "setfsgid32",
    // Signals, time and randomness.
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigtimedwait",
    "rt_sigtimedwait_time64", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "rt_sigsuspend",
    "sigaltstack", "sigreturn", "sigaction", "sigprocmask", "sigpending", "sigsuspend", "signal",
    "pause", "alarm", "nanosleep", "clock_nanosleep", "clock_nanosleep_time64", "clock_gettime",
    "clock_gettime64", "clock_getres", "clock_getres_time64", "gettimeofday", "time",
    "getitimer", "setitimer", "timer_create", "timer_settime", "timer_gettime",
    "timer_getoverrun", "timer_delete", "timer_settime64", "timer_gettime64", "getrandom",
    // System V and POSIX IPC (private to the container's IPC namespace).
    "semget", "semop", "semctl", "semtimedop", "semtimedop_time64", "shmget", "shmat", "shmdt",
    "shmctl", "msgget", "msgsnd", "msgrcv", "msgctl", "ipc", "mq_open", "mq_unlink",
    "mq_timedsend", "mq_timedsend_time64", "mq_timedreceive", "mq_timedreceive_time64",
    "mq_notify", "mq_getsetattr",
    // Asynchronous I/O (not io_uring).
    "io_setup", "io_destroy", "io_submit", "io_getevents", "io_pgetevents",
    "io_pgetevents_time64", "io_cancel",
    // Sockets (the container's network namespace decides what they reach).
    "socket", "socketpair", "bind", "listen", "accept", "accept4", "connect", "getsockname",
    "getpeername", "sendto", "recvfrom", "send", "recv", "sendmsg", "recvmsg", "sendmmsg",
    "recvmmsg", "recvmmsg_time64", "shutdown", "setsockopt", "getsockopt", "socketcall",
];

/// Calls a tool never gets, named so that a test can check none slipped into [`ALLOWED`].
/// Not exhaustive: anything not in [`ALLOWED`] is refused.
#[rustfmt::skip]
pub const REFUSED: &[&str] = &[
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "unshare",
    "setns", "clone3", "mount", "umount", "umount2", "pivot_root", "chroot", "move_mount",
    "open_tree", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr", "bpf",
    "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "keyctl", "add_key", "request_key", "init_module", "finit_module", "delete_module",
    "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff", "sethostname",
    "setdomainname", "syslog", "acct", "quotactl", "quotactl_fd", "lookup_dcookie",
    "name_to_handle_at", "open_by_handle_at", "iopl", "ioperm", "modify_ldt", "personality",
    "settimeofday", "clock_settime", "clock_settime64", "adjtimex", "clock_adjtime",
    "clock_adjtime64", "vhangup", "fanotify_init", "mbind", "set_mempolicy", "migrate_pages",
    "move_pages", "uselib", "ustat", "sysfs", "_sysctl", "nfsservctl", "process_madvise",
    "process_mrelease", "memfd_secret", "vm86", "vm86old",
];

/// `clone` flags that create namespaces (`CLONE_NEWNS`, `NEWCGROUP`, `NEWUTS`, `NEWIPC`,
/// `NEWUSER`, `NEWPID`, `NEWNET`); `clone` is allowed only when none is set.
pub const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// `EPERM`: the answer to a refused call.
const EPERM: u32 = 1;
/// `ENOSYS`: the answer to `clone3`, so that C libraries fall back to `clone`.
const ENOSYS: u32 = 38;

/// The profile in the engine's JSON format.
pub fn profile() -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": EPERM,
        "archMap": [
            { "architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"] },
            { "architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"] },
        ],
        "syscalls": [
            { "names": ALLOWED, "action": "SCMP_ACT_ALLOW" },
            {
                "names": ["clone"],
                "action": "SCMP_ACT_ALLOW",
                "args": [{ "index": 0, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ" }],
            },
            { "names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS },
        ],
    })
}

/// The `security_opt` entry that confines a container by [`profile`]: the engine takes the
/// profile's JSON text inline.
pub fn security_opt() -> &'static str {
    static OPT: OnceLock<String> = OnceLock::new();
    OPT.get_or_init(|| format!("seccomp={}", profile()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn no_refused_call_is_allowed_and_names_are_unique() {
        let allowed: BTreeSet<_> = ALLOWED.iter().collect();
        assert_eq!(allowed.len(), ALLOWED.len(), "a name is listed twice");
        for name in REFUSED {
            assert!(!allowed.contains(name), "{name} is refused and allowed");
        }
        assert!(
            !allowed.contains(&"clone"),
            "clone is allowed only with its flag check"
        );
    }

    #[test]
    fn the_option_is_the_profile_inline() {
        let opt = security_opt();
        let json = opt.strip_prefix("seccomp=").unwrap();
        let v: Value = serde_json::from_str(json).unwrap();
        assert_eq!(v, profile());
        assert_eq!(v["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(v["syscalls"][1]["args"][0]["value"], 0x7E02_0000u64);
        assert_eq!(v["syscalls"][2]["errnoRet"], 38);
    }
}
