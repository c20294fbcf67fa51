"""Step ``report``: one self-contained HTML file (plots embedded as data URIs) from the steps' saved
summaries, and the same content as ``report.json`` and CSV tables. Steps that have not run are marked so."""

from __future__ import annotations

import base64
import csv
import json
import shutil
import time
from pathlib import Path
from typing import Any

from ... import __version__
from ...ui import say
from ..config import to_toml
from ..context import Context

TRUST_LINKS = (  # (step, summary key, link)
    ("train", "trust_brevitas_ir", "Brevitas ⇄ integer IR executor"),
    ("campaign", "trust_engine_executor", "campaign engine ⇄ executor with the fault applied"),
    ("hls", "trust_csim_executor", "HLS C-simulation ⇄ executor"),
    ("deploy", "trust_driver_executor", "driver on the accelerator emulator ⇄ executor and campaign engine"),
)


def pct(v: float | None, digits: int = 2) -> str:
    return "" if v is None else f"{100 * v:.{digits}f} %"


#: What an empty table cell says instead (every cell holds a value or says why it has none).
NOT_AVAILABLE = "n/a"


def cell(v: Any) -> str:
    """A table cell as shown: integers with thousands separators, nothing as "n/a", the rest as text."""
    if v is None or v == "":
        return NOT_AVAILABLE
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.4g}"
    return str(v)


def numeric_columns(rows: list[list[Any]]) -> list[bool]:
    """Per column: does it hold numbers (right-aligned in the report) rather than text (left-aligned)? The
    rule of the terminal tables (:func:`resilq.ui.numeric_column`: every cell reads as a number, placeholders
    and a bare n/a aside; an n/a that says why is text), except that the first column names the rows and is
    always text."""
    from ...ui import numeric_column

    width = max((len(r) for r in rows), default=0)
    return [i > 0 and numeric_column([r[i] for r in rows if i < len(r)]) for i in range(width)]


def cells(rows: list[list[Any]], missing: str = NOT_AVAILABLE) -> list[list[str]]:
    return [[missing if v is None or v == "" else cell(v) for v in row] for row in rows]


def image(path: Path, caption: str) -> dict[str, Any]:
    """A figure embedded as a data URI, with the CSS size it was drawn for and its pixel density
    (:mod:`resilq.figures`)."""
    from ...figures import DENSITY, png_size

    data = base64.b64encode(path.read_bytes()).decode("ascii")
    width, height = png_size(path)
    return {"src": f"data:image/png;base64,{data}", "caption": caption, "density": f"{DENSITY:g}",
            "width": round(width / DENSITY), "height": round(height / DENSITY)}


def trust_rows(s: dict[str, dict]) -> list[list[str]]:
    rows = []
    for step, key, link in TRUST_LINKS:
        t = s.get(step, {}).get(key)
        if t is None:
            rows.append([link, "not run", f"step {step} has not been run"])
            continue
        rows.append([link, t["status"], trust_detail(key, t)])
    return rows


def trust_detail(key: str, t: dict) -> str:
    if t["status"] == "skipped":
        return t.get("reason", "")
    if key == "trust_brevitas_ir":
        mism = sum(layer["mismatches"] for layer in t["layers"])
        elems = sum(layer["elements"] for layer in t["layers"])
        return (f"{t['inputs']:,} test images, {len(t['layers'])} tensors, {elems:,} int8 values: {mism:,} mismatches; "
                f"top-1 agreement {pct(t['top1_agreement'])}")
    if key == "trust_engine_executor":
        return "; ".join(f"{c.get('scheme', '?')} ({c['protected']:,} protected): {c['faults']:,} faults × "
                         f"{c['images']:,} images, {c['differing_faults']:,} differ" for c in t["checks"])
    if key == "trust_csim_executor":
        return "; ".join(f"{c['variant']}: {c['images']} images, every layer "
                         f"{'equal' if not any(x['mismatches'] for x in c['layers']) else 'DIFFERENT'}, "
                         f"{c['faults'] - c['faults_differing']}/{c['faults']} faults equal, MODEL_CYCLES {c['cycles']:,} "
                         f"(model {c['cycles_model']:,})" for c in t["checks"])
    return "; ".join(f"{c['variant']}: logits {'equal' if c['logits_equal'] else 'DIFFERENT'}, MODEL_CYCLES {c['cycles']:,} "
                     f"(model {c['cycles_model']:,}), {c['campaign']['faults']} device faults, "
                     f"{c['campaign'].get('mismatched', 0)} differ from the engine" for c in t["checks"])


def paper_rows(c: dict, s: dict) -> list[list[str]] | None:
    """The comparison with the paper at NVF >= 20 %, every blank saying why it is blank."""
    from ...campaign.plots import PAPER_THRESHOLD

    rows = (c.get("paper") or {}).get("rows")
    if not rows:
        return None
    peak = max((x["max"] for x in s.get("analyze", {}).get("layers", [])), default=None)
    reached = peak is not None and peak >= PAPER_THRESHOLD
    why = (f"n/a: no neuron reaches {100 * PAPER_THRESHOLD:g} %" if not reached
           else f"n/a: the sweep has no point at NVF {100 * PAPER_THRESHOLD:g} %")
    return cells(rows, why)


def paper_network(name: str) -> str:
    """The paper's network and its dataset, e.g. ``LeNet-5 (MNIST)``."""
    from ...nvf.paper import PAPER_SETUP

    shown = {"lenet5": "LeNet-5", "mlp7": "MLP-7", "alexnet": "AlexNet"}.get(name, name)
    return f"{shown} ({PAPER_SETUP[name][0]})" if name in PAPER_SETUP else shown


def overhead_text(h: dict) -> str:
    """What the harden step selected, each variant's own protected count, and which rows of the overhead table
    are only costed (the same selection under a scheme not in ``harden.schemes``: not built, not fault-injected)."""
    counts = ", ".join(f"{v['scheme']} protects {v['protected']:,}" for v in h["variants"])
    text = f"Selection: {h['criterion']}"
    if h.get("equivalent_threshold") is not None:
        text += f" (NVF ≥ {pct(h['equivalent_threshold'])})"
    text += f"; {counts} of the {h['neurons']:,} neurons."
    built = {"unprotected"} | {v["scheme"] for v in h["variants"]}
    costed = [c["variant"] for c in h["overhead"] if c["variant"] not in built]
    if costed:
        text += (f" The first table also costs {', '.join(costed)} on the same selection for comparison; "
                 f"{'they are' if len(costed) > 1 else 'it is'} not in harden.schemes, so not built, "
                 "checked or fault-injected (the second table and the campaigns hold the built variants).")
    return text


def sections(ctx: Context) -> dict[str, Any]:
    s = {step: ctx.summary(step) for step in ("train", "analyze", "harden", "campaign", "hls", "deploy")
         if ctx.has(step)}
    doc: dict[str, Any] = {"trust": trust_rows(s)}
    if "train" in s:
        t = s["train"]
        doc["model"] = {"columns": t["layers"]["columns"], "rows": cells(t["layers"]["rows"], "-"),
                        "text": f"{t['name']} on {t['dataset']}: {t['neurons']:,} neurons, {t['macs']:,} MACs, "
                                f"{t['params']:,} parameters; integer test accuracy {pct(t['int_accuracy'])} over "
                                f"{t['test_images']:,} images" + (f" (the Brevitas QAT model it was exported from: "
                                                                  f"{pct(t['float_accuracy'])})"
                                                                  if t.get("float_accuracy") is not None else "")}
    if "analyze" in s:
        a = s["analyze"]
        paper = a["paper"] is not None
        cols = ["NVF ≥", "critical neurons", "portion"] + (["paper", "paper portion"] if paper else [])
        rows = [[pct(r["threshold"], 0), f"{r['critical']:,}", pct(r["portion"])] +
                ([f"{r['paper_critical']:,}", pct(r["paper_portion"])] if paper else []) for r in a["table1"]]
        peak = max((x["max"] for x in a["layers"]), default=0.0)
        fitted = a.get("table1_fitted") or []
        doc["table1"] = {"columns": cols, "rows": rows,
                         "fitted": [[pct(r["threshold"], 1), f"{r['critical']:,}", pct(r["portion"])] for r in fitted],
                         "layers": [[x["name"], f"{x['neurons']:,}", pct(x["mean"], 3), pct(x["max"])]
                                    for x in a["layers"]],
                         "peak": pct(peak), "peak_value": peak,
                         "empty_rows": sum(1 for r in a["table1"] if r["critical"] == 0),
                         "text": f"{a['method']} NVF over {a['inputs']:,} {a['split']} inputs "
                                 f"({a['seconds']:.1f} s)" + (f"; the columns \u201cpaper\u201d are Table I of "
                                                               f"Ahmadilivani et al. for their {paper_network(a['paper'])}"
                                                               if paper else "")}
        captions = a.get("plot_captions") or [Path(p).stem.replace("_", " ") for p in a["plots"]]
        doc["nvf_figures"] = [image(ctx.out / p, c) for p, c in zip(a["plots"], captions)]
    if "harden" in s:
        h = s["harden"]
        doc["overhead"] = {
            "text": overhead_text(h),
            "columns": ["variant", "protected", "shadows", "network size", "MACs", "modelled cycles / inference"],
            "rows": [[c["variant"], f"{c['protected']:,}", f"{c['shadows']:,}", f"{c['network_size']:,}",
                      f"{c['macs']:,}", NOT_AVAILABLE if c["cycles"] is None else f"{c['cycles']:,}"] for c in h["overhead"]],
            "variants": [[v["scheme"], f"{v['protected']:,}", f"{v['slots']:,}", pct(v["top1_agreement"]),
                          pct(v["accuracy"]), ", ".join(v["fallback_layers"]) or "-"] for v in h["variants"]]}
    if "hls" in s:
        x = s["hls"]
        doc["hardware"] = {
            "board": x["board"],
            "text": f"PE {x['pe']} × SIMD {x['simd']} on the {x['part']} at {x['clock_mhz']:g} MHz (model estimates, "
                    f"not synthesis results); HLS project in {x['project']}; build: {x['build']}",
            "resources": [[r["resource"], f"{r['estimated']:,}", f"{r['available']:,}", r["utilisation"]]
                          for r in x["resources"]],
            "cycles": [[c["variant"], f"{c['slots']:,}", f"{c['cycles']:,}", f"{c['microseconds']:.0f}",
                        f"{100 * c['overhead']:+.1f} %"] for c in x["cycles"]]}
    if "campaign" in s:
        c = s["campaign"]
        doc["fig4"] = {
            "text": f"{fault_kind_text(c)}, each applied to {c['images']:,} "
                    f"{c['dataset']} test images; 95 % confidence intervals; {c['shared_outcomes']:,} outcomes shared "
                    f"between sweep points",
            "figure": image(ctx.out / c["plot"], "(a) accuracy loss and (b) critical inferences under one fault "
                            "each, and (c) the network size, against the NVF threshold: protected variants should "
                            "fall below the dashed unprotected line as the threshold drops (more neurons protected), "
                            "while their size grows; bars and the band are 95 % confidence intervals."),
            "columns": ["scheme", "NVF ≥", "protected", "network size", "faults", "accuracy loss (95 % CI)",
                        "critical inferences (95 % CI)"],
            "rows": [[r["scheme"], "-" if r["threshold"] is None else pct(r["threshold"], 3), f"{r['n_protected']:,}",
                      f"{r['network_size']:,}", f"{r['faults_done']:,}",
                      f"{pct(r['accuracy_loss'], 3)} [{pct(r['accuracy_loss_low'], 3)}, {pct(r['accuracy_loss_high'], 3)}]",
                      f"{pct(r['critical_rate'], 3)} [{pct(r['critical_rate_low'], 3)}, {pct(r['critical_rate_high'], 3)}]"]
                     for r in c["rows"]],
            "notes": [p["note"] for p in c.get("points", []) if p.get("note")],
            "paper": paper_rows(c, s)}
    verdict = s.get("campaign", {}).get("default_protection")
    if verdict:  # issue #16: does the default protection pay? (one small block of the report)
        doc["verdict"] = {"pays": verdict["pays"], "headline": verdict["headline"], "lines": verdict["lines"]}
    if "deploy" in s:
        d = s["deploy"]
        doc["deployment"] = {
            "text": f"each variant packaged for the {d['board']} and run through the driver on the {d['target']}",
            "rows": [[r["variant"], f"{r['images']:,}", pct(r["accuracy"]), f"{r['cycles_per_image']:,.0f}",
                      f"{r['corrections']:,}", r["package"]] for r in d["results"]]}
    if "train" in s and "analyze" in s:
        doc["explain"] = explanations(s)
    kpis = []
    if "train" in s:
        kpis.append({"label": "integer test accuracy", "value": pct(s["train"]["int_accuracy"])})
    if "harden" in s:
        variants = s["harden"]["variants"]
        counts = [f"{v['protected']:,}" for v in variants]
        if len(set(counts)) > 1:  # each scheme's own count (a budget of slots buys fewer TMR neurons than splits)
            kpis.append({"label": f"neurons protected ({' / '.join(v['scheme'] for v in variants)})",
                         "value": " / ".join(counts)})
        else:
            kpis.append({"label": "neurons protected", "value": counts[0] if counts else f"{s['harden']['selected']:,}"})
    passed = sum(1 for r in doc["trust"] if r[1] == "pass")
    kpis.append({"label": "chain-of-trust links passed", "value": f"{passed} / {len(doc['trust'])}"})
    doc["kpis"] = kpis
    doc["summaries"] = s
    return doc


def explanations(s: dict) -> dict[str, str]:
    """The sentences that say what the numbers mean (measured values filled in)."""
    from ...campaign.plots import PAPER_THRESHOLD

    a = s["analyze"]
    peak = max((x["max"] for x in a["layers"]), default=0.0)
    paper = a.get("paper")
    paper_share = next((r["paper_portion"] for r in a["table1"] if abs(r["threshold"] - PAPER_THRESHOLD) < 1e-9
                        and "paper_portion" in r), None)
    why = (f"Our NVFs are far below the paper's: our largest is {pct(peak)}, while "
           + (f"{pct(paper_share)} of the paper's {paper_network(paper)} neurons reach {100 * PAPER_THRESHOLD:g} %. "
              if paper_share is not None else "the paper's networks reach 20 % and more. ")
           + "The NVF here is exact (every bit of every neuron flipped on every input) and averages over all 8 "
             "bits, most of which a trained int8 network masks (low bits barely move the logits, and ReLU and "
             "max-pool discard many flips); the paper's δ-range Algorithm 1 counts a bit as vulnerable from the "
             "first changing deviation upward, which the exact count does not. We report what we measure "
             "(docs/nvf.md) and protect by fraction or budget instead of the paper's fixed 20 % threshold.")
    return {
        "nvf": "The Neuron Vulnerability Factor (NVF) of a neuron is the share of (input, bit) pairs for which "
               "flipping that bit of the neuron's int8 output changes the network's top-1 prediction, over the "
               f"{a['inputs']:,} {a['split']} inputs analysed; a neuron is critical at a threshold when its NVF "
               "reaches it.",
        "why_lower": why,
        "critical": "A critical inference is one whose top-1 prediction a fault changes; the critical-inference "
                    "rate is their share over every (fault, image) pair.",
        "loss": "Accuracy loss is each variant's fault-free accuracy minus its accuracy under the fault, so it "
                "is relative to that variant's own fault-free accuracy: a split network computes slightly "
                "different fault-free values, and its loss can look larger or even negative (a fault that "
                "happens to correct a wrong prediction).",
        "intervals": "The 95 % intervals are over the sampled faults for this fixed evaluation set (the images "
                     "are not resampled): they say how precisely the fault sample measures this set, not how "
                     "the numbers would vary on other images.",
        "cycles": "Cycles are modelled: the accelerator's cycle model (the MODEL_CYCLES counter, equal in the "
                  "C-simulation, the emulator and Python), not a measurement on hardware.",
    }


def write_csvs(ctx: Context, out: Path, doc: dict[str, Any]) -> list[str]:
    """Machine-readable tables (raw numbers, not the report's formatted strings)."""
    written = []
    for step, name in (("analyze", "table1.csv"), ("campaign", "fig4.csv")):
        if ctx.has(step):
            shutil.copyfile(ctx.file(step, name), out / name)
            written.append(name)
    s = doc["summaries"]
    tables = {"overhead.csv": s.get("harden", {}).get("overhead"), "cycles.csv": [
        {k: v for k, v in c.items() if k != "layers"} for c in s.get("hls", {}).get("cycles", [])] or None,
        "deployment.csv": s.get("deploy", {}).get("results"),
        "trust.csv": [{"link": r[0], "status": r[1], "compared": r[2]} for r in doc["trust"]]}
    for name, rows in tables.items():
        if rows:
            with open(out / name, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(rows[0]))
                w.writeheader()
                w.writerows(rows)
            written.append(name)
    return written


def run(ctx: Context) -> dict:
    import jinja2

    from ...figures import PAGE_WIDTH_PX

    out = ctx.dir("report")
    doc = sections(ctx)
    steps = []
    for step in ("train", "analyze", "harden", "campaign", "hls", "deploy"):
        seconds = ctx.summary(step).get("seconds_step") if ctx.has(step) else None
        steps.append([step, "done" if ctx.has(step) else "not run", "" if seconds is None else f"{seconds:.1f}"])
    env = jinja2.Environment(loader=jinja2.PackageLoader("resilq.pipeline", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined)
    env.filters["numeric_columns"] = numeric_columns
    html = env.get_template("report.html.j2").render(
        title=ctx.config.run.name, generated=time.strftime("%Y-%m-%d %H:%M"), version=__version__,
        out=str(ctx.out), steps=steps, config_toml=to_toml(ctx.config), model=doc.get("model"),
        table1=doc.get("table1"), nvf_figures=doc.get("nvf_figures"), overhead=doc.get("overhead"),
        hardware=doc.get("hardware"), fig4=doc.get("fig4"), verdict=doc.get("verdict"), deployment=doc.get("deployment"), trust=doc["trust"],
        kpis=doc["kpis"], explain=doc.get("explain"), page_width=PAGE_WIDTH_PX)
    (out / "report.html").write_text(html, encoding="utf-8")
    public = {k: v for k, v in doc.items() if k != "nvf_figures"}
    for key in ("fig4",):
        if key in public:
            public[key] = {k: v for k, v in public[key].items() if k != "figure"}
    (out / "report.json").write_text(json.dumps(public, indent=1, ensure_ascii=False))
    csvs = write_csvs(ctx, out, doc)
    failed = [r[0] for r in doc["trust"] if r[1] == "FAIL"]
    say(f"report: {out / 'report.html'} ({len(html) / 1e6:.1f} MB, plots embedded); JSON and CSV beside it")
    return {"html": "report.html", "json": "report.json", "csv": csvs, "failed_links": failed}


def fault_kind_text(c: dict) -> str:
    """The campaign section's fault kind in words (summaries older than the kind option read as ``output``)."""
    kind, fm, p = c.get("fault_kind", "output"), c["fault_model"], c.get("kind_params", {})
    if kind == "lane":
        scope = "in every neuron layer at once" if p.get("lane_scope") == "all" else "in one layer"
        return (f"fault kind lane: persistent {fm} faults of one PE lane (of {p.get('pe')}) {scope}, "
                "corrupting every slot that lane writes (shadows on that lane included)")
    if kind == "weight":
        return ("fault kind weight: one flipped bit of one stored int8 weight or bias word per fault, "
                "for the whole run")
    if kind == "ber":
        probs = ", ".join(f"{v:g}" for v in p.get("ber", []))
        return (f"fault kind ber: every bit of the {p.get('sites')} flips with probability p = {probs} "
                f"(drawn per {p.get('per')}, {p.get('repetitions')} seeded repetitions per p)")
    return f"fault kind output: {fm} faults on every slot (shadows included)"
