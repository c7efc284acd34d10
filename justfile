# One-line cargo aliases; cargo does the work.

# The main job: emulator + server, package then publish (brief's request).
demo *ARGS:
    cargo run -p publish-server --example demo -- {{ARGS}}

# The README's test command.
test:
    cargo test --workspace

lint:
    cargo clippy --workspace --all-targets --all-features -- -D warnings

fmt:
    cargo fmt --all

serve:
    cargo run -p publish-server

emulator *ARGS:
    cargo run -p databricks-emulator -- {{ARGS}}

fixtures:
    cargo run -p databricks-emulator --example make_fixtures

deny:
    cargo deny check licenses bans sources
