//! The conformance suite, run against every implementation.

use publish_source::memory::MemorySource;

use crate::common::{Env, suite};

#[tokio::test]
async fn memory_source_conforms() {
    let suite = suite();
    let source = MemorySource::new();
    for fixture in suite.fixtures() {
        source
            .add_table(fixture.definition, fixture.batches)
            .expect("add fixture");
    }
    suite.run_all(&source).await;
    assert_eq!(source.open_streams(), 0, "every stream was dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn databricks_source_on_the_emulator_conforms() {
    let env = Env::start().await;
    let source = env.source();
    env.suite.run_all(&source).await;
}
