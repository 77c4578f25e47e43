//! Runs the standalone example (`examples/softmax_regression.rs`) as a test: it is the proof that
//! a training loop can use this crate alone.

#[path = "../examples/softmax_regression.rs"]
#[allow(dead_code)]
mod example;

#[test]
fn softmax_regression_example_runs() {
    example::main().expect("the example trains without errors");
}
