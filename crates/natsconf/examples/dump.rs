//! Prints the canonical JSON dump of a config file, like `natsws --dump-config`:
//! `cargo run -p natsconf --example dump -- [--positions] [--env ENV.json] FILE`.
//! With `--env`, the environment is exactly the JSON object in ENV.json (as conforacle's `-env`);
//! `--plain` parses in non-pedantic mode (conforacle without `-pedantic`).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::HashMap;
use std::io::Write as _;

fn main() {
    let mut positions = false;
    let mut pedantic = true;
    let mut env_file = None;
    let mut file = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--positions" => positions = true,
            "--plain" => pedantic = false,
            "--env" => env_file = args.next(),
            _ => file = Some(arg),
        }
    }
    let Some(file) = file else {
        eprintln!("usage: dump [--positions] [--env ENV.json] FILE");
        std::process::exit(2);
    };
    let settings = natsconf::ParseSettings {
        pedantic,
        ..natsconf::ParseSettings::default()
    };
    let res = match env_file {
        None if pedantic => natsconf::parse_file(std::path::Path::new(&file)),
        None => natsconf::parse_file_with(
            file.as_bytes(),
            &natsconf::ProcessEnv,
            &natsconf::FsLoader::new(),
            settings,
        ),
        Some(env_file) => {
            let text = std::fs::read_to_string(env_file).unwrap_or_default();
            let parsed: HashMap<String, String> = serde_json::from_str(&text).unwrap_or_default();
            let env: HashMap<Vec<u8>, Vec<u8>> = parsed
                .into_iter()
                .map(|(k, v)| (k.into_bytes(), v.into_bytes()))
                .collect();
            natsconf::parse_file_with(file.as_bytes(), &env, &natsconf::FsLoader::new(), settings)
        }
    };
    let out = natsconf::dump::dump(&res, positions);
    let _ = std::io::stdout().write_all(out.as_bytes());
    std::process::exit(i32::from(res.is_err()));
}
