//! A request-response codec for atr's canonical-CBOR messages: the payload
//! is the whole stream (the writer closes its half), read under a per-protocol
//! byte cap so a peer can never make the node buffer more than the cap.
//! Every atr message is at least one byte of CBOR, so an empty stream is no
//! message: a responder that drops a request (over a budget) closes the
//! stream without writing, and the requester sees an error, not an answer.

use std::io;

use futures::prelude::*;
use libp2p::StreamProtocol;
use libp2p::request_response::Codec;

/// Raw message bytes with request and response caps.
#[derive(Debug, Clone, Copy)]
pub struct CappedBytes {
    /// Largest request accepted, bytes.
    pub max_request: usize,
    /// Largest response accepted, bytes.
    pub max_response: usize,
}

async fn read_capped<T: AsyncRead + Unpin + Send>(io: &mut T, max: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    io.take(max as u64 + 1).read_to_end(&mut buf).await?;
    if buf.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message over the {max}-byte cap"),
        ));
    }
    if buf.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "no message: the peer closed the stream without one",
        ));
    }
    Ok(buf)
}

async fn write_all_close<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    bytes: &[u8],
    max: usize,
) -> io::Result<()> {
    if bytes.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing to send {} bytes over the {max}-byte cap", bytes.len()),
        ));
    }
    io.write_all(bytes).await?;
    io.close().await
}

impl Codec for CappedBytes {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &Self::Protocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_capped(io, self.max_request).await
    }

    async fn read_response<T>(&mut self, _: &Self::Protocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_capped(io, self.max_response).await
    }

    async fn write_request<T>(&mut self, _: &Self::Protocol, io: &mut T, req: Vec<u8>) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_all_close(io, &req, self.max_request).await
    }

    async fn write_response<T>(&mut self, _: &Self::Protocol, io: &mut T, res: Vec<u8>) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_all_close(io, &res, self.max_response).await
    }
}
