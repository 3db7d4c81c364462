//! Google STS answers and Google error bodies: never panic; accepted tokens expire within
//! the 12-hour cap.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let Ok(body) = std::str::from_utf8(rest) else {
        return;
    };
    crossfed::fuzzing::sts_answer(body);
    crossfed::fuzzing::google_error(400 + u16::from(first), body);
});
