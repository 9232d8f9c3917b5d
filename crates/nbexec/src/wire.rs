//! The Jupyter messaging protocol's wire format (version 5.3), just what a
//! client driving one kernel needs: the connection file, the ZeroMQ sockets,
//! signed requests out and verified messages in.
//!
//! A message on a socket is one ZeroMQ multipart message:
//!
//! ```text
//! [routing identities…] b"<IDS|MSG>" signature header parent_header metadata content [buffers…]
//! ```
//!
//! `signature` is the lowercase hex HMAC-SHA256, keyed with the connection
//! file's `key`, of the four JSON frames `header`, `parent_header`,
//! `metadata` and `content` in that order (not of the buffers); with an
//! empty key it is empty and nothing is checked. The routing identities are
//! only there on ROUTER sockets; a DEALER or SUB client receives none.
//!
//! Received messages are split and verified here; what they say is read as
//! raw JSON by the caller (`kernel.rs`).

use std::fmt::Write as _;
use std::net::{IpAddr, TcpListener};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::Sha256;
use zeromq::{Socket as _, SocketSend, ZmqMessage};

/// The protocol version written in our headers.
pub(crate) const PROTOCOL_VERSION: &str = "5.3";
/// The frame separating the routing identities from the message.
pub(crate) const DELIMITER: &[u8] = b"<IDS|MSG>";
/// The `username` in our headers.
pub(crate) const USERNAME: &str = "atelier";
/// The only signature scheme we write in connection files.
pub(crate) const SIGNATURE_SCHEME: &str = "hmac-sha256";

/// Why a received multipart message was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum WireError {
    #[error("no <IDS|MSG> delimiter")]
    NoDelimiter,
    #[error("{0} frames after the delimiter (a signature and 4 JSON frames are needed)")]
    TooFewFrames(usize),
    #[error("the signature is not hex")]
    BadSignatureEncoding,
    #[error("the signature does not match (wrong key or altered message)")]
    BadSignature,
}

/// How the kernel's sockets are reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Transport {
    Tcp,
    Ipc,
}

/// A kernel's connection file (`kernel.json`), as jupyter_client writes it.
/// For IPC, `ip` is a path prefix and the "ports" are suffixes: channel `n`
/// is the Unix socket `<ip>-<n>`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ConnectionInfo {
    pub ip: String,
    pub transport: Transport,
    pub shell_port: u16,
    pub iopub_port: u16,
    pub stdin_port: u16,
    pub control_port: u16,
    pub hb_port: u16,
    pub key: String,
    pub signature_scheme: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_name: Option<String>,
}

impl ConnectionInfo {
    /// The ZeroMQ endpoint of the channel on `port`: `tcp://ip:port`, or
    /// `ipc://<ip>-<port>` as ipykernel and jupyter_client name them.
    pub(crate) fn endpoint(&self, port: u16) -> String {
        match self.transport {
            Transport::Tcp => format!("tcp://{}:{port}", self.ip),
            Transport::Ipc => format!("ipc://{}-{port}", self.ip),
        }
    }
}

/// Bind `n` listeners on `ip` port 0 and return their ports with the
/// listeners, which keep the ports taken until the caller drops them (just
/// before the kernel binds them).
pub(crate) fn reserve_ports(ip: IpAddr, n: usize) -> std::io::Result<(Vec<u16>, Vec<TcpListener>)> {
    let mut ports = Vec::with_capacity(n);
    let mut listeners = Vec::with_capacity(n);
    for _ in 0..n {
        let listener = TcpListener::bind((ip, 0))?;
        ports.push(listener.local_addr()?.port());
        listeners.push(listener);
    }
    Ok((ports, listeners))
}

/// Connect the shell channel: a DEALER whose ZeroMQ identity is the session
/// id, as jupyter_client's clients do (the kernel's stdin channel routes
/// `input_request` to the identity that sent the shell request).
pub(crate) async fn connect_shell(
    info: &ConnectionInfo,
    session: &str,
) -> zeromq::ZmqResult<zeromq::DealerSocket> {
    let mut options = zeromq::SocketOptions::default();
    options.peer_identity(zeromq::util::PeerIdentity::try_from(session.as_bytes())?);
    let mut socket = zeromq::DealerSocket::with_options(options);
    socket.connect(&info.endpoint(info.shell_port)).await?;
    Ok(socket)
}

/// Connect the IOPub channel: a SUB subscribed to everything.
pub(crate) async fn connect_iopub(info: &ConnectionInfo) -> zeromq::ZmqResult<zeromq::SubSocket> {
    let mut socket = zeromq::SubSocket::new();
    socket.subscribe("").await?;
    socket.connect(&info.endpoint(info.iopub_port)).await?;
    Ok(socket)
}

/// Connect the control channel: a DEALER (any identity).
pub(crate) async fn connect_control(
    info: &ConnectionInfo,
) -> zeromq::ZmqResult<zeromq::DealerSocket> {
    let mut socket = zeromq::DealerSocket::new();
    socket.connect(&info.endpoint(info.control_port)).await?;
    Ok(socket)
}

/// Signs and verifies with the connection key (HMAC-SHA256).
#[derive(Clone)]
pub(crate) struct Signer {
    /// `None` for an empty key: signatures are empty and not checked.
    mac: Option<Hmac<Sha256>>,
}

impl Signer {
    pub(crate) fn new(key: &str) -> Signer {
        let mac = (!key.is_empty()).then(|| {
            // HMAC takes a key of any length; this never fails.
            Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC accepts any key length")
        });
        Signer { mac }
    }

    fn keyed<'a>(&self, parts: impl IntoIterator<Item = &'a [u8]>) -> Option<Hmac<Sha256>> {
        let mut mac = self.mac.clone()?;
        for part in parts {
            mac.update(part);
        }
        Some(mac)
    }

    /// The signature of the four JSON frames: lowercase hex, or empty
    /// without a key.
    pub(crate) fn sign<'a>(&self, parts: impl IntoIterator<Item = &'a [u8]>) -> String {
        match self.keyed(parts) {
            Some(mac) => to_hex(&mac.finalize().into_bytes()),
            None => String::new(),
        }
    }

    /// Check `signature` (hex) against the four JSON frames, in constant
    /// time.
    pub(crate) fn verify<'a>(
        &self,
        signature: &[u8],
        parts: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), WireError> {
        let Some(mac) = self.keyed(parts) else {
            return Ok(());
        };
        let expected = from_hex(signature).ok_or(WireError::BadSignatureEncoding)?;
        mac.verify_slice(&expected)
            .map_err(|_| WireError::BadSignature)
    }
}

fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn from_hex(text: &[u8]) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

/// A received message, split at the delimiter and verified; its JSON frames
/// not parsed yet.
#[derive(Debug)]
pub(crate) struct Received {
    /// The routing identities before the delimiter (none on DEALER/SUB).
    #[allow(dead_code)]
    pub identities: Vec<Bytes>,
    pub header: Bytes,
    pub parent_header: Bytes,
    #[allow(dead_code)]
    pub metadata: Bytes,
    pub content: Bytes,
    #[allow(dead_code)]
    pub buffers: Vec<Bytes>,
}

/// Split a received multipart message at `<IDS|MSG>` and verify its
/// signature.
pub(crate) fn parse(frames: Vec<Bytes>, signer: &Signer) -> Result<Received, WireError> {
    let at = frames
        .iter()
        .position(|f| f.as_ref() == DELIMITER)
        .ok_or(WireError::NoDelimiter)?;
    let after = frames.len() - at - 1;
    if after < 5 {
        return Err(WireError::TooFewFrames(after));
    }
    let mut frames = frames.into_iter();
    let identities: Vec<Bytes> = frames.by_ref().take(at).collect();
    let mut next = || frames.next().unwrap_or_default();
    let _delimiter = next();
    let signature = next();
    let (header, parent_header, metadata, content) = (next(), next(), next(), next());
    signer.verify(
        &signature,
        [&header, &parent_header, &metadata, &content].map(|b| b.as_ref()),
    )?;
    Ok(Received {
        identities,
        header,
        parent_header,
        metadata,
        content,
        buffers: frames.collect(),
    })
}

#[derive(Serialize)]
struct Header<'a> {
    msg_id: &'a str,
    username: &'a str,
    session: &'a str,
    date: String,
    msg_type: &'a str,
    version: &'a str,
}

/// A request of ours, as the frames to send (no routing identity: we send
/// from DEALER sockets) and its msg_id.
pub(crate) struct Outgoing {
    pub msg_id: String,
    pub frames: Vec<Bytes>,
}

/// Build and sign a request without a parent: `parent_header` and
/// `metadata` are `{}`.
pub(crate) fn request(signer: &Signer, session: &str, msg_type: &str, content: &Value) -> Outgoing {
    let msg_id = uuid::Uuid::new_v4().to_string();
    let header = Header {
        msg_id: &msg_id,
        username: USERNAME,
        session,
        date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        msg_type,
        version: PROTOCOL_VERSION,
    };
    let header = to_json(&header);
    let parent_header = Bytes::from_static(b"{}");
    let metadata = Bytes::from_static(b"{}");
    let content = to_json(content);
    let signature = signer.sign([&header, &parent_header, &metadata, &content].map(|b| b.as_ref()));
    Outgoing {
        msg_id,
        frames: vec![
            Bytes::from_static(DELIMITER),
            Bytes::from(signature),
            header,
            parent_header,
            metadata,
            content,
        ],
    }
}

/// JSON bytes of a header or a content value.
fn to_json(value: &impl Serialize) -> Bytes {
    // A struct of strings or a `Value` (string keys) always serialises.
    Bytes::from(serde_json::to_vec(value).expect("JSON serialisation"))
}

/// `kernel_info_request` content.
pub(crate) fn kernel_info_request() -> Value {
    json!({})
}

/// `execute_request` content, as a notebook runner sends it.
pub(crate) fn execute_request(code: &str, stop_on_error: bool) -> Value {
    json!({
        "code": code,
        "silent": false,
        "store_history": true,
        "user_expressions": {},
        "allow_stdin": false,
        "stop_on_error": stop_on_error,
    })
}

/// `interrupt_request` content.
pub(crate) fn interrupt_request() -> Value {
    json!({})
}

/// `shutdown_request` content.
pub(crate) fn shutdown_request() -> Value {
    json!({ "restart": false })
}

/// Sends signed requests of one session on one socket.
pub(crate) struct Sender<S> {
    socket: S,
    signer: Signer,
    session: String,
}

impl<S: SocketSend> Sender<S> {
    pub(crate) fn new(socket: S, signer: Signer, session: &str) -> Sender<S> {
        Sender {
            socket,
            signer,
            session: session.to_owned(),
        }
    }

    /// Send a `msg_type` request with `content`; its msg_id.
    pub(crate) async fn send(
        &mut self,
        msg_type: &str,
        content: &Value,
    ) -> Result<String, zeromq::ZmqError> {
        let out = request(&self.signer, &self.session, msg_type, content);
        let mut frames = out.frames.into_iter();
        let mut message = ZmqMessage::from(frames.next().unwrap_or_default());
        for frame in frames {
            message.push_back(frame);
        }
        self.socket.send(message).await?;
        Ok(out.msg_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames_of(out: &Outgoing) -> Vec<Bytes> {
        out.frames.clone()
    }

    #[test]
    fn a_request_signs_and_verifies() {
        let signer = Signer::new("a3f1c2d4-key");
        let out = request(
            &signer,
            "sess",
            "execute_request",
            &execute_request("1 + 1", true),
        );
        assert_eq!(out.frames.len(), 6);
        assert_eq!(out.frames[0].as_ref(), DELIMITER);
        let signature = std::str::from_utf8(&out.frames[1]).unwrap();
        assert_eq!(signature.len(), 64);
        assert!(
            signature
                .bytes()
                .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
        );

        let got = parse(frames_of(&out), &signer).expect("verifies");
        assert!(got.identities.is_empty());
        assert!(got.buffers.is_empty());
        assert_eq!(got.parent_header.as_ref(), b"{}");
        assert_eq!(got.metadata.as_ref(), b"{}");
        let content: Value = serde_json::from_slice(&got.content).unwrap();
        assert_eq!(
            content,
            json!({"code": "1 + 1", "silent": false, "store_history": true,
                   "user_expressions": {}, "allow_stdin": false, "stop_on_error": true})
        );
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_four_json_frames() {
        // RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?"),
        // the data split over the four frames.
        let signer = Signer::new("Jefe");
        let parts: [&[u8]; 4] = [b"what do ya", b" want ", b"for ", b"nothing?"];
        assert_eq!(
            signer.sign(parts),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(
            signer
                .verify(
                    b"5BDCC146BF60754E6A042426089575C75A003F089D2739839DEC58B964EC3843",
                    parts
                )
                .is_ok()
        );
    }

    #[test]
    fn a_tampered_byte_fails_verification() {
        let signer = Signer::new("key");
        let out = request(
            &signer,
            "sess",
            "kernel_info_request",
            &kernel_info_request(),
        );
        // Every JSON frame and the signature itself are covered.
        for index in 1..out.frames.len() {
            let mut frames = frames_of(&out);
            let mut altered = frames[index].to_vec();
            altered[0] ^= 0x01;
            frames[index] = Bytes::from(altered);
            let err = parse(frames, &signer).expect_err("tampered");
            assert!(
                matches!(
                    err,
                    WireError::BadSignature | WireError::BadSignatureEncoding
                ),
                "frame {index}: {err:?}"
            );
        }
        // Buffers are not signed.
        let mut frames = frames_of(&out);
        frames.push(Bytes::from_static(b"\x00binary"));
        assert_eq!(
            parse(frames, &signer)
                .expect("buffers unsigned")
                .buffers
                .len(),
            1
        );
    }

    #[test]
    fn a_wrong_key_is_rejected() {
        let out = request(
            &Signer::new("right"),
            "s",
            "shutdown_request",
            &shutdown_request(),
        );
        assert_eq!(
            parse(frames_of(&out), &Signer::new("wrong")).unwrap_err(),
            WireError::BadSignature
        );
        // A signature of another length, or not hex, is rejected too.
        let mut frames = frames_of(&out);
        frames[1] = Bytes::from_static(b"abcd");
        assert_eq!(
            parse(frames, &Signer::new("right")).unwrap_err(),
            WireError::BadSignature
        );
        let mut frames = frames_of(&out);
        frames[1] = Bytes::from_static(b"zz");
        assert_eq!(
            parse(frames, &Signer::new("right")).unwrap_err(),
            WireError::BadSignatureEncoding
        );
        // Without a key nothing is signed or checked.
        let unsigned = request(
            &Signer::new(""),
            "s",
            "shutdown_request",
            &shutdown_request(),
        );
        assert!(unsigned.frames[1].is_empty());
        assert!(parse(frames_of(&unsigned), &Signer::new("")).is_ok());
    }

    #[test]
    fn a_multipart_with_identities_splits_at_the_delimiter() {
        let signer = Signer::new("k");
        let out = request(&signer, "s", "interrupt_request", &interrupt_request());
        let mut frames = vec![Bytes::from_static(b"id-1"), Bytes::from_static(b"id-2")];
        frames.extend(frames_of(&out));
        frames.push(Bytes::from_static(b"buf"));
        let got = parse(frames, &signer).expect("verifies");
        assert_eq!(got.identities, [&b"id-1"[..], b"id-2"]);
        assert_eq!(got.header, out.frames[2]);
        assert_eq!(got.content.as_ref(), b"{}");
        assert_eq!(got.buffers, [&b"buf"[..]]);

        assert_eq!(
            parse(vec![Bytes::from_static(b"id")], &signer).unwrap_err(),
            WireError::NoDelimiter
        );
        let mut short = frames_of(&out);
        short.truncate(5);
        assert_eq!(
            parse(short, &signer).unwrap_err(),
            WireError::TooFewFrames(4)
        );
    }

    #[test]
    fn the_header_has_the_required_fields_and_version_5_3() {
        let out = request(
            &Signer::new("k"),
            "the-session",
            "execute_request",
            &json!({}),
        );
        let header: Value = serde_json::from_slice(&out.frames[2]).unwrap();
        let fields: Vec<&str> = header
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut sorted = fields.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            [
                "date", "msg_id", "msg_type", "session", "username", "version"
            ]
        );
        assert_eq!(header["version"], "5.3");
        assert_eq!(header["msg_type"], "execute_request");
        assert_eq!(header["session"], "the-session");
        assert_eq!(header["username"], USERNAME);
        assert_eq!(header["msg_id"], out.msg_id.as_str());
        let id = uuid::Uuid::parse_str(&out.msg_id).expect("uuid");
        assert_eq!(id.get_version_num(), 4);
        // ISO 8601 in UTC with microseconds, e.g. 2024-05-01T12:34:56.123456Z.
        let date = header["date"].as_str().unwrap();
        assert_eq!(date.len(), "2024-05-01T12:34:56.123456Z".len(), "{date}");
        assert!(date.ends_with('Z'));
        assert!(chrono::DateTime::parse_from_rfc3339(date).is_ok());
        // Two requests never share an id.
        let again = request(
            &Signer::new("k"),
            "the-session",
            "execute_request",
            &json!({}),
        );
        assert_ne!(again.msg_id, out.msg_id);
    }

    #[test]
    fn request_contents_are_as_the_spec_says() {
        assert_eq!(shutdown_request(), json!({"restart": false}));
        assert_eq!(kernel_info_request(), json!({}));
        assert_eq!(execute_request("x", false)["stop_on_error"], false);
    }

    #[test]
    fn the_connection_file_and_endpoints_are_jupyters() {
        let mut info = ConnectionInfo {
            ip: "127.0.0.1".into(),
            transport: Transport::Tcp,
            shell_port: 5001,
            iopub_port: 5002,
            stdin_port: 5003,
            control_port: 5004,
            hb_port: 5005,
            key: "k".into(),
            signature_scheme: SIGNATURE_SCHEME.into(),
            kernel_name: Some("python3".into()),
        };
        assert_eq!(info.endpoint(info.shell_port), "tcp://127.0.0.1:5001");
        let file = serde_json::to_value(&info).unwrap();
        assert_eq!(
            file,
            json!({"ip": "127.0.0.1", "transport": "tcp", "shell_port": 5001, "iopub_port": 5002,
                   "stdin_port": 5003, "control_port": 5004, "hb_port": 5005, "key": "k",
                   "signature_scheme": "hmac-sha256", "kernel_name": "python3"})
        );
        info.transport = Transport::Ipc;
        info.ip = "/tmp/nbexec-x/k".into();
        info.iopub_port = 2;
        info.kernel_name = None;
        assert_eq!(info.endpoint(info.iopub_port), "ipc:///tmp/nbexec-x/k-2");
        let file = serde_json::to_value(&info).unwrap();
        assert_eq!(file["transport"], "ipc");
        assert!(file.get("kernel_name").is_none());
    }

    #[test]
    fn reserved_ports_stay_taken_until_dropped() {
        let ip = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
        let (ports, listeners) = reserve_ports(ip, 3).unwrap();
        assert_eq!(ports.len(), 3);
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 3);
        for &port in &ports {
            assert!(
                TcpListener::bind((ip, port)).is_err(),
                "port {port} is held"
            );
        }
        drop(listeners);
    }
}
