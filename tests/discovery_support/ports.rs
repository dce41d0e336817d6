//! Free loopback ports for the servers the tests start.

use std::net::{TcpListener, UdpSocket};

/// A port free for both TCP and UDP on 127.0.0.1 right now (the OS picks it;
/// a server started at once is very unlikely to lose it).
pub fn free_port() -> u16 {
    for _ in 0..50 {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind a TCP port");
        let port = tcp.local_addr().expect("local addr").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both TCP and UDP on 127.0.0.1");
}
