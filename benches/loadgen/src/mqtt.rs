//! An MQTT 3.1.1 client over WebSocket (`/mqtt`, subprotocol `mqtt`): the repository's
//! `mqtt-codec` in the client role over the connections of [`crate::conn`].

use std::io;
use std::time::Duration;

use bytes::BytesMut;
use mqtt_codec::{
    ConnAck, Connect, ConnectReturnCode, Decoder, Packet, QoS, SubAckReturn, Subscribe,
};

use crate::conn::{Conn, Target};

/// A connected MQTT client (CONNACK received).
pub(crate) struct Client {
    pub(crate) conn: Conn,
    decoder: Decoder,
}

impl Client {
    /// Opens a WebSocket to `/mqtt`, sends CONNECT with a clean session and waits for CONNACK.
    pub(crate) fn open(
        target: &Target,
        timeout: Duration,
        client_id: &str,
    ) -> Result<Self, String> {
        let conn = Conn::open_ws(target, timeout, "/mqtt", "mqtt")?;
        let mut client = Self {
            conn,
            decoder: Decoder::client(),
        };
        client.send(&Packet::Connect(Connect {
            clean_session: true,
            keep_alive: 60,
            client_id: client_id.to_owned(),
            ..Connect::default()
        }))?;
        match client.read()? {
            Packet::ConnAck(ConnAck {
                code: ConnectReturnCode::Accepted,
                ..
            }) => Ok(client),
            other => Err(format!(
                "{client_id}: expected CONNACK accepted, got {other:?}"
            )),
        }
    }

    /// Encodes and sends one packet.
    pub(crate) fn send(&mut self, packet: &Packet) -> Result<(), String> {
        let mut out = BytesMut::new();
        mqtt_codec::encode(packet, &mut out).map_err(|e| format!("encode: {e}"))?;
        self.conn.send(out.freeze())
    }

    /// Sends bytes already encoded (a batch of packets) as one WebSocket message.
    pub(crate) fn send_encoded(&mut self, packets: BytesMut) -> Result<(), String> {
        self.conn.send(packets.freeze())
    }

    /// The next whole packet already read, if any.
    pub(crate) fn next(&mut self) -> Result<Option<Packet>, String> {
        self.decoder
            .decode(self.conn.input())
            .map_err(|e| format!("MQTT: {e}"))
    }

    /// The next packet, reading (blocking, up to the socket's read timeout) as needed.
    pub(crate) fn read(&mut self) -> Result<Packet, String> {
        loop {
            if let Some(packet) = self.next()? {
                return Ok(packet);
            }
            match self.conn.fill() {
                Ok(0) => return Err("the server closed the connection".to_owned()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err("no packet within the read timeout".to_owned());
                }
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }

    /// Subscribes to `filter` with `qos` and waits for a SUBACK granting it.
    pub(crate) fn subscribe(&mut self, filter: &str, qos: QoS) -> Result<(), String> {
        self.send(&Packet::Subscribe(Subscribe {
            packet_id: 1,
            filters: vec![(filter.to_owned(), qos)],
        }))?;
        match self.read()? {
            Packet::SubAck(ack)
                if ack.packet_id == 1 && ack.returns == [SubAckReturn::Success(qos)] =>
            {
                Ok(())
            }
            other => Err(format!("expected SUBACK granting {qos:?}, got {other:?}")),
        }
    }

    /// Sends PINGREQ and reads until PINGRESP: the server has handled everything sent before.
    /// Other packets on the way are an error (the caller's connection receives none).
    pub(crate) fn round_trip(&mut self) -> Result<(), String> {
        self.send(&Packet::PingReq)?;
        match self.read()? {
            Packet::PingResp => Ok(()),
            other => Err(format!("expected PINGRESP, got {other:?}")),
        }
    }
}

/// Appends a PUBLISH of `payload` on `topic` to `out`.
pub(crate) fn put_publish(
    out: &mut BytesMut,
    topic: &str,
    packet_id: Option<u16>,
    payload: &[u8],
) -> Result<(), String> {
    let head = mqtt_codec::PublishHead::new(topic, packet_id, false);
    mqtt_codec::encode_publish_head(&head, payload.len(), out)
        .map_err(|e| format!("encode: {e}"))?;
    out.extend_from_slice(payload);
    Ok(())
}
