//! Arbitrary strings into the node-name parser: no panics, and whatever
//! parses is canonical (parsing its printed form gives the same name).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rollcall::core::NodeName;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(name) = NodeName::parse(s) {
            let again = NodeName::parse(name.as_str()).expect("a canonical name parses");
            assert_eq!(again, name);
            let _ = name.port(4370);
            let _ = name.host();
        }
    }
});
