//! The plain-function form: `asyncffi::python::run` with a configuration chosen at run time
//! (`rust-app-plain PYTHON [hang]`: that interpreter, the Rust main on async-std, asyncio's own loop).
//! It calls with keywords, reads attributes, and makes a module from source text.

use asyncffi::python::{self, Config};
use asyncffi::{Runtime, Value};

async fn app() -> asyncffi::Result<()> {
    let dumps = python::import("json")?.attr("dumps")?;
    let text = dumps
        .call_kw(
            (vec![Value::Int(1), Value::Str("a".into())],),
            [("separators", Value::List(vec![",".into(), ":".into()]))],
        )
        .await?;
    println!("dumps {text:?}");
    let major = python::import("sys")?
        .attr("version_info.major")?
        .get()
        .await?;
    println!("major {major:?}");
    let loop_class = python::import("asyncio")?
        .attr("get_running_loop")?
        .call(())
        .await;
    // A loop is not a value that crosses: the call fails.
    match loop_class {
        Err(e) => println!("loop refused: {}", e.kind),
        Ok(v) => println!("loop {v:?}"),
    }
    let module = python::module_from_code(
        "made_from_code",
        "async def twice(x, *, by=2):\n    return x * by\n",
    )
    .await?;
    let twice = module.attr("twice")?;
    let four = twice.call((2,)).await?;
    let six = twice.call_kw((2,), [("by", Value::Int(3))]).await?;
    println!("twice {four:?} {six:?}");
    let broken = python::module_from_code("broken", "def (:\n").await;
    println!(
        "broken {}",
        broken.map(|_| "ok".into()).unwrap_or_else(|e| e.kind)
    );
    if std::env::args().nth(2).as_deref() == Some("hang") {
        // A Python thread that never ends: finalizing waits for it, for 1 s at most.
        let source = "import threading, time\n\
                      threading.Thread(target=time.sleep, args=(3600,)).start()\n";
        python::module_from_code("hang", source).await?;
    }
    Ok(())
}

fn main() {
    let python = std::env::args()
        .nth(1)
        .expect("usage: rust-app-plain PYTHON");
    let config = Config::new()
        .python(python)
        .runtime(Runtime::AsyncStd)
        .finalize_timeout(std::time::Duration::from_secs(1));
    std::process::exit(python::run(config, app()));
}
