//! Ports for the servers tests start. Std only: the agent's integration tests include
//! this file too (`#[path]`), so both pick ports the same way.

/// A free TCP port on 127.0.0.1 for a server a test starts, never the same one twice in
/// this process.
///
/// It lies below the kernel's ephemeral range (`net.ipv4.ip_local_port_range`): a port
/// from that range (what binding port 0 gives) can be taken between this call and the
/// server's bind, or while a server is stopped to be restarted on it, by the local end of
/// any outgoing connection, Docker's published ports or another `bind(0)`. Below the range
/// only an explicit bind takes a port, and this function hands each one out once. Falls
/// back to an ephemeral port when the range starts too low to leave room.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FLOOR: u32 = 10_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    if ephemeral_low > FLOOR + 1_000 {
        let span = ephemeral_low - FLOOR;
        // Each process starts at its own offset, so two test processes rarely meet.
        let start = std::process::id().wrapping_mul(2_654_435_761) % span;
        for _ in 0..span {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let Ok(port) = u16::try_from(FLOOR + (start + n) % span) else {
                continue;
            };
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_bindable_and_below_the_ephemeral_range() {
        let low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|r| r.split_whitespace().next()?.parse().ok())
            .unwrap_or(32_768);
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        let distinct: std::collections::HashSet<_> = ports.iter().collect();
        assert_eq!(distinct.len(), ports.len(), "{ports:?}");
        for p in ports {
            assert!(
                p < low || low <= 11_000,
                "{p} is in the ephemeral range from {low}"
            );
            // Another test thread forking a child holds a copy of the probe's socket until
            // the child's exec closes it: bindable within moments, not necessarily at once.
            let bound = (0..100).any(|_| {
                std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() || {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    false
                }
            });
            assert!(bound, "{p} could not be bound");
        }
    }
}
