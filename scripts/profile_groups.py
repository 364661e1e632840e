#!/usr/bin/env python3
"""Groups a `perf report --sort sym --stdio -q -g none` listing (on stdin)
by where the time goes: the parts an event loop can save (syscall entry
and exit, epoll, io_uring's own kernel code) beside those it cannot (the
TCP/IP stack, wake-ups, the server's own code). Prints one line of
percentages and the largest symbols left ungrouped, so that a reader can
check the grouping. Used by scripts/profile_models.sh."""
import re
import sys

NET = re.compile(
    r"(tcp|__tcp|ip_|__ip|ipv4|inet|__inet|skb|__skb|kfree_skb|sk_|__sk|"
    r"sock_|__sock|net_|__net|dev_|__dev|loopback|process_backlog|napi|__napi|"
    r"handle_softirqs|do_softirq|__local_bh|bbr_|__netif|validate_xmit|_copy_|"
    r"copy_|__copy|check_stack|kmem|kfree|__kmalloc|__alloc|alloc_|__build_skb|"
    r"release_sock|lock_sock|__release_sock|nf_|__check_object|simple_copy)"
)


def group(kind, sym):
    if kind == ".":
        return "glasshouse" if "glasshouse" in sym else "libc/std"
    # The completion list's reversal is io_uring's task work.
    if sym.startswith(("io_", "__io_", "tctx_", "llist_")) or "io_uring" in sym:
        return "io_uring"
    if sym.startswith("ep_") or "epoll" in sym or sym in ("sock_poll", "tcp_poll", "__pollwait"):
        return "epoll"
    if sym.startswith(
        ("entry_SYSCALL", "do_syscall", "syscall_", "__x64_sys", "__do_sys", "x64_sys", "fget", "__fget", "fdget", "__fdget", "fput", "vfs_read", "vfs_write")
    ) or "exit_to_user" in sym:
        return "syscall"
    if (
        sym.startswith(("finish_task_switch", "_raw_spin", "update_", "pick_"))
        or any(w in sym for w in ("schedule", "wake", "enqueue", "dequeue", "switch"))
    ):
        return "sched"
    if NET.match(sym):
        return "tcp/ip"
    return "other"


ORDER = ["tcp/ip", "sched", "glasshouse", "libc/std", "syscall", "epoll", "io_uring", "other"]
totals = dict.fromkeys(ORDER, 0.0)
left = []
for line in sys.stdin:
    m = re.match(r"\s+([\d.]+)%\s+\[(.)\]\s+(.*)", line)
    if not m:
        continue
    share, kind, sym = float(m.group(1)), m.group(2), m.group(3).strip()
    g = group(kind, sym)
    totals[g] += share
    if g == "other":
        left.append((share, sym))
print("   groups: " + ", ".join(f"{g} {totals[g]:.1f} %" for g in ORDER))
left.sort(reverse=True)
print("   largest ungrouped: " + ", ".join(f"{s} {p:.1f} %" for p, s in left[:6]))
