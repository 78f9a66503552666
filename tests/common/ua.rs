//! A small SIP user agent for integration tests: builds requests the way the seed's phones
//! do, sends and receives them over UDP or TCP with bounded waits, answers `401`/`407`
//! challenges with `DigestCredentials::answer` (the crate's client side), and answers
//! requests the server sends it (for call tests).
//!
//! It keeps one Call-ID, From tag and CSeq counter per UA, like a phone's registration
//! dialog-less "session"; call tests can build further requests with `request`.

use super::WAIT;
use ferroswitch::auth::{parse_challenges, Answer, Challenge, DigestChallenge, DigestCredentials};
use ferroswitch::net::Transport;
use ferroswitch::sip::{
    parse_datagram, parse_framed, response_to, set_to_tag, Frame, HeaderName, Message, Request,
    Response, StreamFramer, MAX_MESSAGE_SIZE,
};
use std::net::SocketAddr;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

/// A byte stream to the server: TCP, or TLS over TCP.
pub trait Duplex: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Duplex for T {}

enum Link {
    Udp(UdpSocket),
    Tcp {
        stream: Box<dyn Duplex>,
        framer: StreamFramer,
        tls: bool,
    },
}

/// Which challenge the UA answers next, and with which header.
#[derive(Debug, Clone)]
pub struct Auth {
    pub challenge: DigestChallenge,
    /// `Authorization` (after a 401) or `Proxy-Authorization` (after a 407).
    pub header: HeaderName,
    pub nc: u32,
}

pub struct Ua {
    pub user: String,
    pub password: String,
    /// Host of the request URI and of To/From: the server's address, as phones set it.
    pub domain: String,
    pub server: SocketAddr,
    pub local: SocketAddr,
    link: Link,
    pub call_id: String,
    pub tag: String,
    pub cseq: u32,
    branches: u32,
    pub auth: Option<Auth>,
    pub cnonce: String,
}

impl Ua {
    /// A UA on a fresh UDP socket on 127.0.0.1.
    pub async fn udp(server: SocketAddr, user: &str, password: &str) -> Ua {
        let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind UDP");
        let local = sock.local_addr().expect("local addr");
        Ua::new(server, local, Link::Udp(sock), user, password)
    }

    /// A UA on a new TCP connection to `server`.
    pub async fn tcp(server: SocketAddr, user: &str, password: &str) -> Ua {
        let stream = timeout(WAIT, TcpStream::connect(server))
            .await
            .expect("connect in time")
            .expect("connect");
        let local = stream.local_addr().expect("local addr");
        let link = Link::Tcp {
            stream: Box::new(stream),
            framer: StreamFramer::new(MAX_MESSAGE_SIZE),
            tls: false,
        };
        Ua::new(server, local, link, user, password)
    }

    /// A UA on a new TLS connection to `server`, trusting what `client` trusts.
    pub async fn tls(
        server: SocketAddr,
        client: std::sync::Arc<rustls::ClientConfig>,
        user: &str,
        password: &str,
    ) -> Ua {
        let stream = timeout(WAIT, super::tls::connect(client, server))
            .await
            .expect("TLS connect in time")
            .expect("TLS handshake");
        let local = stream.get_ref().0.local_addr().expect("local addr");
        let link = Link::Tcp {
            stream: Box::new(stream),
            framer: StreamFramer::new(MAX_MESSAGE_SIZE),
            tls: true,
        };
        Ua::new(server, local, link, user, password)
    }

    fn new(server: SocketAddr, local: SocketAddr, link: Link, user: &str, pw: &str) -> Ua {
        Ua {
            user: user.into(),
            password: pw.into(),
            domain: server.ip().to_string(),
            server,
            local,
            link,
            call_id: format!("{user}-{}@{}", local.port(), local.ip()),
            tag: format!("t{}", local.port()),
            cseq: 0,
            branches: 0,
            auth: None,
            cnonce: format!("cn{:08x}", local.port()),
        }
    }

    /// A second handle on this UA's UDP socket (the same receive queue), for a test to peek
    /// at what has arrived without taking it.
    pub fn udp_dup(&self) -> std::net::UdpSocket {
        use std::os::fd::AsFd;
        match &self.link {
            Link::Udp(sock) => {
                let fd = sock.as_fd().try_clone_to_owned().expect("dup the socket");
                std::net::UdpSocket::from(fd)
            }
            Link::Tcp { .. } => panic!("udp_dup on a TCP UA"),
        }
    }

    pub fn transport(&self) -> Transport {
        match self.link {
            Link::Udp(_) => Transport::Udp,
            Link::Tcp { tls: false, .. } => Transport::Tcp,
            Link::Tcp { tls: true, .. } => Transport::Tls,
        }
    }

    /// `sip:SERVER-ADDRESS`, the request URI of REGISTER and OPTIONS.
    pub fn server_uri(&self) -> String {
        format!("sip:{}", self.domain)
    }

    /// Our own contact URI (where the server reaches this UA).
    pub fn contact_uri(&self) -> String {
        let t = self.transport().as_str().to_ascii_lowercase();
        format!("sip:{}@{};transport={t}", self.user, self.local)
    }

    pub fn aor(&self) -> String {
        format!("{}@{}", self.user, self.domain)
    }

    pub fn next_cseq(&mut self) -> u32 {
        self.cseq += 1;
        self.cseq
    }

    /// A request with our Via (fresh branch, `rport`), Max-Forwards, From/To/Call-ID/CSeq,
    /// then `extra` header lines, credentials for the last challenge (next nc) and `body`.
    pub fn request(
        &mut self,
        method: &str,
        ruri: &str,
        to: &str,
        cseq: u32,
        extra: &[&str],
        body: &str,
    ) -> String {
        self.branches += 1;
        let mut lines = vec![
            format!("{method} {ruri} SIP/2.0"),
            format!(
                "Via: SIP/2.0/{} {};branch=z9hG4bK-ua{}-{};rport",
                self.transport(),
                self.local,
                self.local.port(),
                self.branches
            ),
            "Max-Forwards: 70".into(),
            format!("To: <{to}>"),
            format!("From: <sip:{}@{}>;tag={}", self.user, self.domain, self.tag),
            format!("Call-ID: {}", self.call_id),
            format!("CSeq: {cseq} {method}"),
        ];
        lines.extend(extra.iter().map(|l| l.to_string()));
        if let Some(v) = self.credentials(method, ruri, body.as_bytes()) {
            let header = self.auth.as_ref().map(|a| a.header.clone()).expect("auth");
            lines.push(format!("{}: {v}", header.as_str()));
        }
        lines.push("User-Agent: ferroswitch-test-ua".into());
        lines.push(format!("Content-Length: {}", body.len()));
        lines.join("\r\n") + "\r\n\r\n" + body
    }

    /// A REGISTER for our AOR with the next CSeq; `extra` replaces the default
    /// `Contact: <our contact>` + `Expires: 3600` when not empty.
    pub fn register_request(&mut self, extra: &[&str]) -> String {
        let cseq = self.next_cseq();
        self.register_request_at(cseq, extra)
    }

    pub fn register_request_at(&mut self, cseq: u32, extra: &[&str]) -> String {
        let contact = format!("Contact: <{}>", self.contact_uri());
        let defaults = [contact.as_str(), "Expires: 3600"];
        let extra = if extra.is_empty() {
            &defaults[..]
        } else {
            extra
        };
        let (ruri, to) = (self.server_uri(), format!("sip:{}", self.aor()));
        self.request("REGISTER", &ruri, &to, cseq, extra, "")
    }

    /// An OPTIONS to the server.
    pub fn options_request(&mut self) -> String {
        let cseq = self.next_cseq();
        let ruri = self.server_uri();
        let to = ruri.clone();
        self.request("OPTIONS", &ruri, &to, cseq, &[], "")
    }

    /// Credentials for the current challenge with the next nc, if there is one.
    fn credentials(&mut self, method: &str, uri: &str, body: &[u8]) -> Option<String> {
        let auth = self.auth.as_mut()?;
        auth.nc += 1;
        let creds = DigestCredentials::answer(
            &auth.challenge,
            &Answer {
                username: &self.user,
                password: &self.password,
                method,
                uri,
                body,
                cnonce: &self.cnonce,
                nc: auth.nc,
            },
        );
        Some(creds.to_string())
    }

    /// Takes the first Digest challenge of a 401 or 407; nc restarts.
    pub fn learn(&mut self, r: &Response) {
        self.auth = Some(Auth {
            challenge: challenge(r),
            header: match r.status {
                407 => HeaderName::ProxyAuthorization,
                _ => HeaderName::Authorization,
            },
            nc: 0,
        });
    }

    pub async fn send(&mut self, msg: &str) {
        let sent = timeout(WAIT, async {
            match &mut self.link {
                Link::Udp(s) => s.send_to(msg.as_bytes(), self.server).await.map(|_| ()),
                Link::Tcp { stream, .. } => {
                    stream.write_all(msg.as_bytes()).await?;
                    stream.flush().await
                }
            }
        })
        .await
        .expect("send in time");
        sent.expect("send");
    }

    /// The next message from the server (UDP: from any address), bounded by [`WAIT`].
    pub async fn recv(&mut self) -> Message {
        let got = timeout(WAIT, async {
            match &mut self.link {
                Link::Udp(s) => {
                    let mut buf = vec![0u8; 65_535];
                    let (n, _) = s.recv_from(&mut buf).await.expect("UDP receive");
                    parse_datagram(&buf[..n]).expect("server sent a parseable datagram")
                }
                Link::Tcp { stream, framer, .. } => {
                    let mut buf = [0u8; 4096];
                    loop {
                        if let Some(frame) = framer.pop().expect("server stream frames") {
                            if let Frame::Message(m) = frame {
                                return parse_framed(m).expect("server sent a parseable message");
                            }
                            continue;
                        }
                        let n = stream.read(&mut buf).await.expect("TCP read");
                        assert!(n > 0, "server closed the connection");
                        framer.push(&buf[..n]);
                    }
                }
            }
        })
        .await;
        got.expect("no message from the server in time")
    }

    /// The next final response (provisional ones skipped).
    pub async fn recv_final(&mut self) -> Response {
        loop {
            match self.recv().await {
                Message::Response(r) if r.status >= 200 => return r,
                Message::Response(_) => continue,
                Message::Request(r) => {
                    panic!("expected a response, got {} request", r.method.as_str())
                }
            }
        }
    }

    /// The next request the server sends us.
    pub async fn recv_request(&mut self) -> Request {
        match self.recv().await {
            Message::Request(r) => r,
            Message::Response(r) => panic!("expected a request, got {} response", r.status),
        }
    }

    /// Sends `msg` and returns the final response.
    pub async fn ask(&mut self, msg: &str) -> Response {
        self.send(msg).await;
        self.recv_final().await
    }

    /// Registers with `extra` lines (see `register_request`), answering one challenge.
    pub async fn register(&mut self, extra: &[&str]) -> Response {
        let msg = self.register_request(extra);
        let r = self.ask(&msg).await;
        if r.status != 401 {
            return r;
        }
        self.learn(&r);
        let msg = self.register_request(extra);
        self.ask(&msg).await
    }

    /// Answers a request the server sent us with `status` (To tag added for non-100).
    pub async fn reply(
        &mut self,
        req: &Request,
        status: u16,
        reason: &str,
        extra: &[(HeaderName, String)],
    ) {
        let mut resp = response_to(req, status, reason);
        if status > 100 {
            set_to_tag(&mut resp, &self.tag);
        }
        for (name, value) in extra {
            resp.headers.push(name.clone(), value.clone());
        }
        let bytes = resp.to_bytes();
        let text = String::from_utf8(bytes.to_vec()).expect("our responses are UTF-8");
        self.send(&text).await;
    }
}

/// The value of `name` in `r`, if present.
pub fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
    r.headers.get_str(&HeaderName::from_wire(name))
}

/// Every value of `name` in `r`, one per header line.
pub fn headers<'a>(r: &'a Response, name: &str) -> Vec<&'a str> {
    let name = HeaderName::from_wire(name);
    r.headers
        .iter()
        .filter(|h| h.name == name)
        .filter_map(|h| h.value_str())
        .collect()
}

pub fn reason(r: &Response) -> String {
    String::from_utf8_lossy(&r.reason).into_owned()
}

/// Header names in order (to compare two responses' shapes).
pub fn header_names(r: &Response) -> Vec<String> {
    r.headers
        .iter()
        .map(|h| h.name.as_str().to_string())
        .collect()
}

/// The first Digest challenge of a 401/407.
pub fn challenge(r: &Response) -> DigestChallenge {
    let name = if r.status == 407 {
        "Proxy-Authenticate"
    } else {
        "WWW-Authenticate"
    };
    assert!(
        r.status == 401 || r.status == 407,
        "not a challenge: {} {}",
        r.status,
        reason(r)
    );
    headers(r, name)
        .into_iter()
        .flat_map(|v| parse_challenges(v).expect("challenge parses"))
        .find_map(|c| match c {
            Challenge::Digest(d) => Some(d),
            Challenge::Other(_) => None,
        })
        .expect("a Digest challenge")
}
