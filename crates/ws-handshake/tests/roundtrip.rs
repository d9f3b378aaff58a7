//! The client side against the server side: every combination of offers and server options
//! ends in the same agreement on both ends.

use ws_handshake::{
    ClientHandshake, ClientRequest, Limits, Options, PathKind, Policy, ServerHandshake, leaf_path,
};

fn check(server_compression: bool, client_compression: bool, no_masking: bool) {
    let policy = Policy::new(&Options {
        compression: server_compression,
        ..Options::default()
    })
    .expect("valid options");
    let path = leaf_path("/");
    let request = ClientRequest {
        path: &path,
        host: "127.0.0.1:7422",
        compression: client_compression,
        no_masking,
        ..ClientRequest::default()
    };
    let mut request_bytes = Vec::new();
    let mut client =
        ClientHandshake::new(&request, &[7; 16], Limits::default(), &mut request_bytes)
            .expect("valid request");

    let mut response = Vec::new();
    let mut server = ServerHandshake::new(false);
    let upgrade = server
        .handle_input(&policy, &request_bytes, None, &mut response)
        .expect("accepted")
        .expect("complete");
    assert_eq!(upgrade.kind, PathKind::Leaf);
    assert_eq!(upgrade.head_len, request_bytes.len());

    // The server's first frame may arrive with the response.
    let head_len = response.len();
    response.extend_from_slice(b"\x82\x05INFO ");
    let mut accepted = None;
    for end in 1..=response.len() {
        if let Some(done) = client
            .handle_input(&response[..end])
            .expect("valid response")
        {
            accepted = Some(done);
            break;
        }
    }
    let accepted = accepted.expect("complete response");
    assert_eq!(accepted.head_len, head_len);
    let compression = server_compression && client_compression;
    assert_eq!(
        upgrade.compression,
        server_compression && client_compression
    );
    assert_eq!(accepted.compression, compression);
    assert_eq!(upgrade.no_masking, no_masking);
    assert_eq!(accepted.mask_writes, !no_masking);
}

#[test]
fn client_and_server_agree() {
    for server_compression in [false, true] {
        for client_compression in [false, true] {
            for no_masking in [false, true] {
                check(server_compression, client_compression, no_masking);
            }
        }
    }
}
