//! Arbitrary lines into the control socket's request parser
//! ([`parse_request`]), as the agent reads them. No panics; a request that
//! parses prints back as one line that parses to the same request; a
//! refusal is one line of JSON, as the agent sends it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rollcall::runtime::control::{parse_request, Request, Response};

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    match parse_request(line) {
        Ok(request) => {
            let text = serde_json::to_string(&request).expect("a request prints");
            assert!(!text.contains('\n'), "a request is one line");
            let again: Request = parse_request(&text).expect("a printed request parses");
            assert_eq!(again, request);
        }
        Err(refusal) => {
            assert!(matches!(refusal, Response::Error { .. }));
            let text = serde_json::to_string(&refusal).expect("a refusal prints");
            assert!(!text.contains('\n'), "a refusal is one line");
        }
    }
});
