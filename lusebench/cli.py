"""The ``lusebench`` command: parses arguments and calls the rooms, nothing more."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

# Before torch loads OpenMP: spinning OpenMP threads on a shared or busy CPU made a tiny training
# step 30x slower here (9.8 vs 0.3 s with two threads and one other busy process); sleeping
# threads cost a few percent when the machine is idle. A user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from lusebench import __version__  # noqa: E402
from lusebench.errors import LusebenchError  # noqa: E402
from lusebench.simulation.config import BENCHMARK_CORPUS, BENCHMARK_SETS  # noqa: E402


def _add_simulate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate",
        help="render binaural mixtures into a dataset folder",
        description="Render reproducible binaural mixtures of captioned clips (paper section 3.1). "
        "Re-running into the same folder resumes; --shard i/n splits one set across machines.",
    )
    p.add_argument("--sources", type=int, default=None, help="sources per mixture, target included (default 3)")
    p.add_argument("--split", choices=["train", "val", "test"], default=None, help="corpus split (default test)")
    p.add_argument("--num", type=int, default=None, help="number of mixtures (default 1000)")
    p.add_argument("--seed", type=int, default=None, help="base seed (default 0)")
    p.add_argument(
        "--benchmark", metavar="NAME",
        help="render one of the fixed benchmark sets (fixes split, sources, count, seed and corpus: debcaps; rendered on "
        "KEMAR, the *-unseen-head sets on the two SONICOM subjects, test-Nsrc's recipes); the minicaps-* sets are "
        "the first, small ones, for demos; the audiocaps-* sets render the recipes your AudioCaps copy covers "
        "(--corpus audiocaps:ROOT) and record the coverage. One of: " + ", ".join(sorted(BENCHMARK_SETS)),
    )
    p.add_argument("--out", type=Path, help="output dataset folder (required unless --verify)")
    p.add_argument("--duration", type=float, default=10.0, help="mixture length in seconds (default 10)")
    p.add_argument("--sample-rate", type=int, default=16000, help="Hz (default 16000)")
    p.add_argument("--corpus", default=None, help="debcaps (embedded: the fixed sets' clips) or minicaps (embedded, small: "
                   "quick looks and demos), audiocaps:ROOT or hf:NAME_OR_PATH; several joined by + "
                   f"(default {BENCHMARK_CORPUS}; with --benchmark, the set's own)")
    p.add_argument("--hrtf", default=None, help="a shipped head (kemar = MIT KEMAR; sonicom-1, sonicom-2, fabian, "
                   "tub-kemar: see `lusebench hrtf`) or a path to a SOFA file; a comma-separated list renders each "
                   "mixture on one of them, drawn from the seed and recorded in the manifest (default kemar; with "
                   "--benchmark, the set's own)")
    p.add_argument(
        "--interpolation", choices=["linear-aligned", "nearest"], default="linear-aligned",
        help="HRIRs between measured azimuths: onset-aligned linear (default) or nearest measured",
    )
    p.add_argument("--format", dest="audio_format", choices=["flac", "wav"], default="flac", help="audio files")
    p.add_argument("--save-sources", action="store_true", help="also write the dry target and interferer images")
    p.add_argument(
        "--absent-share", type=float, default=None,
        help="share of absent-target items, in [0, 0.5]: their query names a clip not in the mixture and no "
        "word of its sources' captions; expected answer: silence and no direction (default 0; fixed by --benchmark)",
    )
    p.add_argument(
        "--room", choices=["anechoic", "reverberant"], default=None,
        help="anechoic HRIRs (default) or reverberant shoebox rooms with BRIRs (pyroomacoustics)",
    )
    p.add_argument(
        "--brir-bank", type=Path, metavar="DIR", default=None,
        help="BRIR cache folder (default $LUSEBENCH_CACHE/brir or ~/.cache/lusebench/brir)",
    )
    p.add_argument("--workers", type=int, default=1, help="processes, one thread each (default 1)")
    p.add_argument("--shard", default="0/1", help="render part i of n of the set, e.g. 0/4 (default 0/1)")
    p.add_argument("--verify", type=Path, metavar="DIR", help="re-render DIR from its config and compare the decoded audio (pass: every sample within "
                   "-100 dBFS of the fresh rendering; missing, altered or undecodable files fail)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_simulate)


def _run_simulate(args: argparse.Namespace) -> int:
    from lusebench.simulation.config import SimulationConfig
    from lusebench.fingerprint import dataset_fingerprint
    from lusebench.simulation.audiocaps_sets import MISSING_FILE, read_coverage
    from lusebench.simulation.writer import Shard, format_verify_report, load_manifest, simulate, verify

    if args.verify is not None:
        report = verify(args.verify, progress=not args.no_progress, brir_bank=args.brir_bank)
        print(format_verify_report(report))
        return 0 if report.ok else 1
    if args.out is None:
        raise LusebenchError("--out DIR is required (or --verify DIR)")
    common = dict(
        duration_s=args.duration,
        sample_rate=args.sample_rate,
        interpolation=args.interpolation,
        audio_format=args.audio_format,
        save_sources=args.save_sources,
        **({"hrtf": args.hrtf} if args.hrtf is not None else {}),
    )
    if args.benchmark is not None:
        if args.benchmark not in BENCHMARK_SETS:
            raise LusebenchError(f"--benchmark {args.benchmark!r}: no such set; one of {', '.join(sorted(BENCHMARK_SETS))}")
        fixed = [flag for flag, value in (("--sources", args.sources), ("--split", args.split),
                                          ("--num", args.num), ("--seed", args.seed),
                                          ("--room", args.room), ("--absent-share", args.absent_share))
                 if value is not None]
        if fixed:
            raise LusebenchError(f"--benchmark fixes {', '.join(fixed)}; leave them out")
        config = BENCHMARK_SETS[args.benchmark].config(**common, **({"corpus": args.corpus} if args.corpus else {}))
    else:
        chosen = {"num_sources": args.sources, "split": args.split, "num_mixtures": args.num, "seed": args.seed,
                  "room": args.room, "absent_share": args.absent_share, "corpus": args.corpus}
        config = SimulationConfig(**{k: v for k, v in chosen.items() if v is not None}, **common)
    manifest = simulate(config, args.out, workers=args.workers, shard=Shard.parse(args.shard),
                        progress=not args.no_progress, brir_bank=args.brir_bank)
    if manifest is not None:
        table = load_manifest(args.out)
        print(f"wrote {len(table)} mixtures to {args.out} (manifest {manifest.name}, fingerprint {dataset_fingerprint(table)})")
        coverage = read_coverage(args.out)
        if coverage is not None:
            print(f"coverage: {coverage['summary']}; the clips' ids and why: {args.out / MISSING_FILE}")
    return 0


def _add_hrtf_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "hrtf",
        help="list the shipped heads, or describe an HRTF set (SOFA) and plot its ITD and ILD",
        description="Without HEAD, list the heads shipped in the package (name, licence, what was measured, "
        "ITD/ILD at 90 deg beside MIT KEMAR's). With HEAD, read that set the way simulate does (horizontal "
        "ring, resampled), print what it holds (directions, taps, rates, identity) and optionally plot its "
        "ITD and ILD against azimuth.",
    )
    p.add_argument("path", nargs="?", default=None, metavar="HEAD",
                   help="a shipped head's name (kemar, sonicom-1, sonicom-2, fabian, tub-kemar) or a SOFA file; "
                   "with --plot and no HEAD: kemar")
    p.add_argument("--sample-rate", type=int, default=16000, help="resample to this rate first, 8,000-192,000 Hz (default 16000)")
    p.add_argument("--plot", type=Path, metavar="FILE", help="write ITD and ILD against azimuth to FILE (.png/.pdf)")
    p.set_defaults(func=_run_hrtf)


def _run_hrtf(args: argparse.Namespace) -> int:
    from lusebench.simulation.hrtf import beside_kemar, describe, describe_heads, load_hrtf, plot_itd_ild

    if args.path is None and args.plot is None:
        print(describe_heads(args.sample_rate))
        return 0
    hrtf = load_hrtf(args.path or "kemar", args.sample_rate)
    # The plot first: a bad --plot path is then a one-line error with nothing printed before it.
    if args.plot is not None:
        plot_itd_ild(hrtf, args.plot)
    print(describe(hrtf))
    print(beside_kemar(hrtf))
    if args.plot is not None:
        print(f"plot written to {args.plot}")
    return 0


def _add_gm_corpus_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gm-corpus",
        help="render gmcaps: captioned General-MIDI training clips, many more than minicaps holds",
        description="Render a training corpus of General-MIDI clips (every GM family, several registers, "
        "tempi and patterns) with captions written from what was rendered, into an AudioCaps-layout folder. "
        "Programs, drum patterns and captions of minicaps' val and test clips are held out. Train on it "
        "beside minicaps with --corpus minicaps+audiocaps:OUT. Needs pretty_midi and tinysoundfont "
        "(pip install pretty_midi==0.2.11 && pip install --no-deps tinysoundfont==0.3.7).",
    )
    p.add_argument("--out", type=Path, required=True, help="corpus folder to write (replaced whole)")
    p.add_argument("--clips", type=int, default=2000, help="number of clips (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the clips and captions (default 0)")
    p.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_gm_corpus)


def _run_gm_corpus(args: argparse.Namespace) -> int:
    from lusebench.simulation.gmcaps import build_gmcaps

    out = build_gmcaps(args.out, args.clips, seed=args.seed, workers=args.workers, progress=not args.no_progress)
    print(f"wrote {args.clips} clips to {out}; train with --corpus minicaps+audiocaps:{out}")
    return 0


def _add_leaderboard_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "leaderboard",
        help="rank results.json files as a Markdown table and a static web page",
        description="Rank results written by `lusebench evaluate`, one table per test set (fingerprint), "
        "condition and source count, beside the paper's Table 1. Writes leaderboard.md and a "
        "index.html that needs no network (figures as PNG files beside it, in figures/).",
    )
    p.add_argument(
        "results", nargs="*", type=Path, metavar="RESULTS",
        help="results.json files, folders searched for them, or the names of committed entries (default: every "
        "committed entry, shipped in the package as lusebench/leaderboard/entries/)",
    )
    p.add_argument("--out", type=Path, default=Path("site"), help="output folder (default site/)")
    p.add_argument("--no-paper", action="store_true", help="leave out the paper's Table 1")
    p.set_defaults(func=_run_leaderboard)


def _run_leaderboard(args: argparse.Namespace) -> int:
    from lusebench.leaderboard import build_leaderboard

    board = build_leaderboard(args.results, args.out, include_paper=not args.no_paper)
    print(f"{len(board.tables)} tables written to {board.markdown} and {board.html}")
    return 0


def _add_systems_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "systems",
        help="list the baseline systems with their tasks and parameter counts",
        description="The paper's five systems: name, paper name, tasks, input channels, GCC-PHAT, "
        "trainable parameters at the paper and tiny presets (frozen text encoder not counted).",
    )
    p.set_defaults(func=_run_systems)


def _run_systems(args: argparse.Namespace) -> int:
    from lusebench.baselines.systems import format_system_table, system_table

    print(format_system_table(system_table()))
    return 0


def _add_train_parser(sub: argparse._SubParsersAction) -> None:
    from lusebench.baselines.presets import TEXT_ENCODERS, preset_values, steps_per_epoch

    def recipe(field: str) -> str:
        return f"(default: the preset's: {preset_values(field)})"

    p = sub.add_parser(
        "train-baseline",
        help="train one of the five systems with the paper's recipe",
        description="Train a system on mixtures rendered on the fly from the corpus's train split, "
        "validating on a fixed rendered val set. AdamW with linear warm-up; the rate is halved after every N "
        "epochs without a better validation figure and the run stops after M "
        f"(N: {preset_values('halve_after')}; M: {preset_values('stop_after')}). An epoch is --epoch-size / --batch-size steps (paper "
        f"{steps_per_epoch('paper')}, small {steps_per_epoch('small')}, tiny {steps_per_epoch('tiny')}). "
        "OUT/best.pt is the checkpoint best on val, written even when the run stops before its first epoch "
        "ends. Several GPUs: torchrun --nproc_per_node=4 -m lusebench.cli train-baseline ... (only rank 0 writes).",
    )
    p.add_argument("--system", required=True, help="t-htdemucs, mlp-gcc, luseel-extract, luseel-nogcc or luseel")
    p.add_argument("--sources", type=int, default=3, help="sources per mixture (default 3)")
    p.add_argument(
        "--preset", choices=["paper", "small", "tiny"], default="paper",
        help="model and recipe size: paper (GPU), small (learns on a 2-core CPU in ~20 min), tiny (smoke "
        "tests) (default paper)",
    )
    p.add_argument("--out", type=Path, help="run folder (default runs/SYSTEM)")
    p.add_argument("--corpus", default=None, help="debcaps (embedded: the fixed test sets' corpus, so a run is scored on "
                   "the kinds of sounds it trained on), minicaps (embedded, small), audiocaps:ROOT, hf:NAME_OR_PATH, or "
                   f"several joined by + (default {BENCHMARK_CORPUS})")
    p.add_argument("--hrtf", default=None, help="a shipped head (see `lusebench hrtf`) or a SOFA file; a comma-separated "
                   "list (kemar,sonicom-1,fabian) renders each training mixture on one drawn at random, validation on "
                   "the first (default kemar)")
    p.add_argument("--val-data", type=Path, help="a rendered val folder (default: rendered into OUT/val)")
    p.add_argument("--batch-size", type=int, help=f"mixtures per step per GPU {recipe('batch_size')}")
    p.add_argument("--epoch-size", type=int, help=f"mixtures per epoch {recipe('epoch_mixtures')}")
    p.add_argument("--max-steps", type=int, help="stop after this many optimizer steps (default: no limit)")
    p.add_argument("--max-epochs", type=int, help=f"stop after this many epochs {recipe('max_epochs')}; "
                   "--max-steps alone lifts the preset's cap")
    p.add_argument("--lr", type=float, help=f"peak AdamW learning rate {recipe('lr')}")
    p.add_argument("--warmup-steps", type=int, help=f"linear warm-up steps {recipe('warmup_steps')}")
    p.add_argument(
        "--text-encoder", choices=["minilm", "t5", "tiny-t5"],
        help="frozen text encoder (default: the preset's: "
        + ", ".join(f"{name} {encoder}" for name, encoder in TEXT_ENCODERS.items()) + ")",
    )
    p.add_argument("--text-model", help="with --text-encoder t5: a local T5 folder or a model id in your Hugging Face "
                   "cache (default: none)")
    p.add_argument("--select-on", choices=["loss", "metrics"], help="what picks best.pt and stops the run: the val loss "
                   f"or the val SI-SNRi and DoA MAE, 1 dB = 10 deg {recipe('select_on')}")
    p.add_argument("--query-pairs", action=argparse.BooleanOptionalAction, default=None,
                   help="serve each training mixture under two queries, its target's and an interferer's, in one batch "
                   f"{recipe('query_pairs')}")
    p.add_argument("--absent-share", type=float, metavar="P",
                   help="share of training queries, in [0, 0.5], that ask for a clip not in the mixture (another "
                   "category, no shared word): trained to silence and no direction, and infer then answers "
                   f"\"absent\" where the DoA likelihood peaks under half the label's peak {recipe('absent_share')}")
    p.add_argument(
        "--doa-label", choices=["likelihood", "density"],
        help="DoA label: likelihood (peak 1) or density (the paper's N(theta; d, 5) read literally, peak 0.178) "
        "(default likelihood)",
    )
    p.add_argument("--workers", type=int, help=f"DataLoader processes per GPU {recipe('num_workers')}")
    p.add_argument("--seed", type=int, help="seed of data, initialisation and dropout (default 0)")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    p.add_argument("--resume", action="store_true", help="continue the run in OUT from last.pt")
    p.add_argument("--force", action="store_true", help="start over in an OUT that holds an earlier run, removing it")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from lusebench.baselines.train import TrainConfig, train

    config = TrainConfig.for_preset(
        args.preset, system=args.system, num_sources=args.sources, corpus=args.corpus, hrtf=args.hrtf,
        batch_size=args.batch_size, epoch_mixtures=args.epoch_size, max_steps=args.max_steps,
        max_epochs=args.max_epochs, num_workers=args.workers, seed=args.seed, lr=args.lr,
        warmup_steps=args.warmup_steps, text_encoder=args.text_encoder, text_model=args.text_model,
        doa_label=args.doa_label, query_pairs=args.query_pairs, select_on=args.select_on,
        absent_share=args.absent_share,
    )
    out = args.out or Path("runs") / args.system
    best = train(config, out, resume=args.resume, force=args.force, val_data=args.val_data, device=args.device,
                 progress=not args.no_progress, command=args.command_line)
    print(f"wrote {best} (the checkpoint best on val; infer takes it)")
    return 0


def _add_infer_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "infer",
        help="run a trained checkpoint over a rendered set and write a submission",
        description="Load a checkpoint written by train-baseline (no config needed), run it over every mixture "
        "of a dataset folder with its caption as the query, and write a submission folder (extracted "
        "audio and/or DoA likelihoods, system.json) that `lusebench evaluate` scores.",
    )
    p.add_argument("--checkpoint", type=Path, required=True, help="a checkpoint written by train-baseline")
    p.add_argument("--data", type=Path, required=True, help="a rendered dataset folder")
    p.add_argument("--out", type=Path, required=True, help="submission folder to write")
    p.add_argument("--batch-size", type=int, default=8, help="mixtures per batch (default 8)")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    p.add_argument("--absent-threshold", metavar="T|none",
                   help="say \"absent\" (an empty azimuth) where a DoA likelihood row peaks under T, a positive "
                   "number chosen on a val set with absent items (lusebench absent-threshold), instead of the "
                   "checkpoint's; none answers every mixture (default: the checkpoint's, stored by train-baseline "
                   "--absent-share, else none)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_infer)


def _absent_threshold(text: str | None) -> float | None | str:
    from lusebench.baselines.infer import CHECKPOINT_THRESHOLD

    if text is None:
        return CHECKPOINT_THRESHOLD
    if text.strip().lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise LusebenchError(f"--absent-threshold must be a positive number or none, got {text!r}") from None


def _run_infer(args: argparse.Namespace) -> int:
    from lusebench.baselines.infer import infer

    out = infer(args.checkpoint, args.data, args.out, batch_size=args.batch_size, device=args.device,
                progress=not args.no_progress, absent_threshold=_absent_threshold(args.absent_threshold))
    print(f"submission written to {out}")
    return 0


def _add_absent_threshold_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "absent-threshold",
        help="choose a localizer's absent threshold on a val set with absent items",
        description="Read a submission's doa_likelihood.npy (checked as evaluate checks it) on a val set with absent\n"
        "items, sweep every likelihood peak under which it could say \"absent\", and print a few thresholds with\n"
        "the share of absent items detected and of present items said absent, and the one of highest balanced\n"
        "accuracy (\"never\": never absent, kept unless a threshold beats chance). Choose on val, never on test:\n\n"
        "  lusebench simulate --split val --sources 2 --num 500 --absent-share 0.1 --corpus debcaps \\\n"
        "      --seed 20461 --duration 10 --out val-absent\n"
        "  lusebench infer --checkpoint RUN/best.pt --data val-absent --out val-sub --absent-threshold none\n"
        "  lusebench absent-threshold val-sub --data val-absent\n"
        "  lusebench infer --checkpoint RUN/best.pt --data test-2src --out sub --absent-threshold T",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("submission", type=Path, help="a submission with doa_likelihood.npy, made on the val set")
    p.add_argument("--data", type=Path, required=True, help="the val set it answers, with absent items")
    p.add_argument("--rows", type=int, default=10, help="thresholds shown, at least 2 (default 10)")
    p.set_defaults(func=_run_absent_threshold)


def _run_absent_threshold(args: argparse.Namespace) -> int:
    from lusebench.benchmark.absent_threshold import format_sweep, sweep_submission

    print(format_sweep(sweep_submission(args.submission, args.data), args.rows))
    return 0


_SUBMISSION_FORMAT = """\
submission format (docs/submission-format.md):
  SUBMISSION/
    system.json              {"name": str, "tasks": ["extraction", "localization"] (either or both),
                              "parameters": int or null, "description": str, "link": str,
                              optional "channels": 1|2 (input channels used), "gcc_phat": bool,
                              "absent_threshold": number (a likelihood row peaking under it: absent)}
    audio/<mixture_id>.flac  extraction: the target's binaural image as it sits in the mixture,
      (or .wav)              2 channels (left, right), the data's sample rate and length, finite,
                             neither channel all zero (silence is allowed, and right, where the
                             manifest's target_absent is true); one file per mixture of the manifest
    doa.csv                  localization: header "mixture_id,azimuth_deg", one row per mixture;
                             degrees, 0 = front, 90 = left; wrapped into [0, 360); an empty
                             azimuth_deg says the queried sound is absent
    doa_likelihood.npy       localization, instead of (or beside) doa.csv: float array of shape
                             (num_mixtures, 360) in manifest order, bin i = i deg; the argmax is
                             the prediction; doa.csv wins when both are given
  A single-task system leaves the other part out and is scored on its task alone.
  Every problem is listed at once; an invalid submission exits with code 2 and writes nothing.
"""


def _add_evaluate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="check and score a submission, write results.json, items.csv and Figs. 2-5",
        description="Check a submission against a dataset folder, score every item (SI-SNR(i), SDR(i), "
        "BSS-eval SDR(i), ITD/ILD error, DoA accuracy/MAE, front-back confusions, the joint "
        "extract-and-locate score, absent-target figures), aggregate with 95% confidence intervals "
        "and draw Figs. 2-5.",
        epilog=_SUBMISSION_FORMAT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("submission", type=Path, help="submission folder")
    p.add_argument("--data", type=Path, required=True, help="dataset folder the submission answers")
    p.add_argument("--out", type=Path, default=None, help="results folder (default SUBMISSION/results)")
    p.add_argument("--check-only", action="store_true", help="run the checks only; write nothing")
    p.add_argument("--workers", type=int, default=2, help="processes of one thread each (default 2)")
    p.add_argument("--no-figures", action="store_true", help="skip Figs. 2-5")
    p.add_argument("--recipes", type=Path, metavar="FILE", help="score only the mixture ids in FILE (one a line), "
                   "e.g. the recipes two copies of a fixed AudioCaps set both hold: comm -12 A/recipes.txt B/recipes.txt; "
                   "default: every mixture")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_joint_options(p)
    p.set_defaults(func=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    from lusebench.benchmark.evaluate import check, evaluate
    from lusebench.benchmark.tracks import TrackOptions
    from lusebench.leaderboard.render import format_fixed

    tracks = TrackOptions(joint_si_snri_db=args.joint_si_snri_db, joint_doa_deg=args.joint_doa_deg)
    if args.check_only:
        submission = check(args.submission, args.data, workers=args.workers, progress=not args.no_progress)
        print(f"submission {submission.path} passes every check ({', '.join(submission.tasks)})")
        return 0
    results = evaluate(args.submission, args.data, args.out, workers=args.workers, figures=not args.no_figures,
                       progress=not args.no_progress, recipes=args.recipes,
                       tracks=tracks)
    for key, cell in results.summary["metrics"]["overall"].items():
        mean = "-" if cell["mean"] is None else format_fixed(cell["mean"], 2)
        ci = "" if cell["ci95"] is None else f"  95% CI [{format_fixed(cell['ci95_low'], 2)}, {format_fixed(cell['ci95_high'], 2)}]"
        if cell.get("ci95_clips_low") is not None:
            ci += f", over {cell['clips']} target clips [{format_fixed(cell['ci95_clips_low'], 2)}, {format_fixed(cell['ci95_clips_high'], 2)}]"
        print(f"{key:>20} {mean:>9}{ci}  (n={cell['n']})")
    coverage = results.summary["dataset"].get("coverage")
    if coverage is not None:
        print(f"scored {coverage['recipes']:,} of the {coverage['of']:,} recipes of {coverage['recipe_set']}: "
              "compare only with results over the same recipes (same fingerprint)")
    print(f"results written to {results.folder}")
    return 0


def _add_joint_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--joint-si-snri-db", type=float, default=3.0,
                   help="joint score: smallest SI-SNRi of an extracted target, in [-100, 100] dB (default 3.0)")
    p.add_argument("--joint-doa-deg", type=float, default=20.0,
                   help="joint score: largest DoA error of a located target, in (0, 180] deg (default 20.0)")


def _add_rescore_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "rescore",
        help="recompute a results folder's track metrics and aggregates from its items.csv (no audio)",
        description="Recompute the front-back, joint and absent-target columns and every aggregate of results "
        "folders from their items.csv alone, with other joint thresholds or to bring a schema 1 folder to the "
        "current schema; rewrites results.json, items.csv and figures/ in place.",
    )
    p.add_argument("results", type=Path, nargs="+", help="results folders (or their results.json)")
    _add_joint_options(p)
    p.add_argument("--no-figures", action="store_true", help="leave figures/ as it is")
    p.set_defaults(func=_run_rescore)


def _run_rescore(args: argparse.Namespace) -> int:
    from lusebench.benchmark.evaluate import rescore
    from lusebench.benchmark.tracks import TrackOptions

    tracks = TrackOptions(joint_si_snri_db=args.joint_si_snri_db, joint_doa_deg=args.joint_doa_deg)
    for folder in args.results:
        print(f"re-scored {rescore(folder, tracks, figures=not args.no_figures).folder}")
    return 0


def _add_reference_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reference",
        help="write a reference submission (mixture, oracle or random) to test a pipeline",
        description="mixture: the mixture passed through (SI-SNRi 0 dB); oracle: the reference image and "
        "true azimuth (the ceiling), written as FLAC of the set's own bit depth; random: uniform azimuths "
        "(expected accuracy 10/360 = 2.8%, 2.1% measured on each fixed test set; MAE 90 deg).",
    )
    p.add_argument(
        "kind", choices=["mixture", "oracle", "random"],
        help="mixture: the mixture passed through; oracle: the reference and true azimuth; random: uniform azimuths",
    )
    p.add_argument("--data", type=Path, required=True, help="dataset folder")
    p.add_argument("--out", type=Path, required=True, help="submission folder to write")
    p.add_argument("--seed", type=int, default=0, help="seed of the random azimuths (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_reference)


def _run_reference(args: argparse.Namespace) -> int:
    from lusebench.benchmark.reference import write_reference

    print(f"wrote {write_reference(args.kind, args.data, args.out, seed=args.seed, progress=not args.no_progress)}")
    return 0


def _add_figures_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "figures",
        help="overlay several systems' results in Figs. 2-5",
        description="Draw Fig. 2 (SI-SNRi by separation), Fig. 3 (DoA MAE by separation) and Fig. 4 "
        "(MAE against SI-SNRi) and Fig. 5 (estimated against true azimuth, polar) for every results folder given, "
        "e.g. systems 3 and 5 for Fig. 2.",
    )
    p.add_argument("results", type=Path, nargs="+", help="results folders (or their results.json), or the names of "
                   "committed entries (lusebench/leaderboard/entries/NAME)")
    p.add_argument("--out", type=Path, required=True, help="folder for the PNG and PDF files")
    p.add_argument("--labels", nargs="+", default=None, help="legend entries, one per results folder "
                   "(default: each system's name)")
    p.add_argument("--allow-mixed", action="store_true", help="overlay results of different test sets (fingerprints); "
                   "refused otherwise")
    p.set_defaults(func=_run_figures)


def _run_figures(args: argparse.Namespace) -> int:
    from lusebench.benchmark.figures import draw_figures
    from lusebench.benchmark.results import load_results
    from lusebench.leaderboard.build import entry_or_path

    paths = draw_figures([load_results(entry_or_path(r)) for r in args.results], args.out, args.labels, allow_mixed=args.allow_mixed)
    print(f"{len(paths)} files written to {args.out}")
    return 0


def _add_demo_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="the whole loop in a minute: simulate, reference submissions, evaluate, leaderboard",
        description="Render a small 3-source test set from the embedded corpus, write the mixture, oracle "
        "and random reference submissions, score each (results.json + Figs. 2-5) and build the "
        "leaderboard page beside the paper's Table 1.",
    )
    p.add_argument("--out", type=Path, default=Path("demo"), help="output folder (default demo/)")
    p.add_argument("--num", type=int, default=40, help="mixtures (default 40)")
    p.add_argument("--duration", type=float, default=4.0, help="seconds per mixture (default 4)")
    p.add_argument("--workers", type=int, default=2, help="evaluation processes (default 2)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from lusebench.demo import run_demo

    outputs = run_demo(args.out, num_mixtures=args.num, duration_s=args.duration, workers=args.workers,
                       progress=not args.no_progress)
    print(f"dataset:     {outputs.data}")
    for path in outputs.results:
        print(f"results:     {path}  (figures in {path.parent / 'figures'})")
    print(f"leaderboard: {outputs.leaderboard}")
    return 0


def _add_replicate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replicate",
        help="train, infer and evaluate all five systems on a fixed test set: the paper's Table 1 at a scale",
        description="Render the fixed test-Nsrc set and a val set, then train-baseline -> infer -> evaluate "
        "each system (each stage skipped when its output is complete, so a second run resumes), and build "
        "the leaderboard page of the results. The small preset fits a 2-core CPU (~20 min per system).",
    )
    p.add_argument("--sources", type=int, choices=[2, 3], default=3, help="sources per mixture (default 3)")
    p.add_argument("--preset", choices=["paper", "small", "tiny"], default="paper",
                   help="model and recipe size, as in train-baseline; small fits a 2-core CPU (default paper)")
    p.add_argument("--out", type=Path, required=True, help="folder for data/, runs/, submissions/, results/, logs/, site/")
    p.add_argument("--systems", nargs="+", help="a subset of the five systems (default all)")
    p.add_argument("--jobs", type=int, default=1, help="systems processed at once, each with cores/jobs threads (default 1)")
    p.add_argument("--seed", type=int, default=0, help="training seed of every system (default 0)")
    p.add_argument("--test-data", type=Path, help="score on this rendered set instead of the fixed test-Nsrc")
    p.add_argument("--eval-workers", type=int, default=2, help="scoring processes per evaluate (default 2)")
    p.add_argument("--gm-clips", type=int, default=0, help="also train on a gmcaps corpus of this many generated "
                   "General-MIDI clips, rendered into OUT/data (see gm-corpus; default 0: --corpus only)")
    p.add_argument("--corpus", default=BENCHMARK_CORPUS, help="corpus to train and validate on: debcaps (the fixed test "
                   "sets' corpus), minicaps, audiocaps:ROOT, hf:NAME_OR_PATH, or several joined by + (default %(default)s)")
    p.add_argument("--query-pairs", action=argparse.BooleanOptionalAction, default=None,
                   help="passed to every train-baseline (default: the preset's; recipe A: --no-query-pairs)")
    p.add_argument("--select-on", choices=["loss", "metrics"], default=None,
                   help="passed to every train-baseline (default: the preset's; recipe A: loss)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_run_replicate)


def _run_replicate(args: argparse.Namespace) -> int:
    from lusebench.replicate import SYSTEM_ORDER, ReplicateConfig, replicate

    config = ReplicateConfig(
        num_sources=args.sources, preset=args.preset, systems=tuple(args.systems or SYSTEM_ORDER), jobs=args.jobs,
        seed=args.seed, test_data=args.test_data, eval_workers=args.eval_workers, gm_clips=args.gm_clips,
        corpus=args.corpus,
        query_pairs=args.query_pairs, select_on=args.select_on,
    )
    page = replicate(config, args.out, progress=not args.no_progress)
    print(f"leaderboard: {page}")
    return 0


_PARSERS = [
    _add_demo_parser,
    _add_simulate_parser,
    _add_gm_corpus_parser,
    _add_hrtf_parser,
    _add_systems_parser,
    _add_train_parser,
    _add_infer_parser,
    _add_absent_threshold_parser,
    _add_replicate_parser,
    _add_evaluate_parser,
    _add_rescore_parser,
    _add_reference_parser,
    _add_figures_parser,
    _add_leaderboard_parser,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lusebench",
        description="Language-queried binaural sound event extraction and localization benchmark.",
    )
    parser.add_argument("--version", action="version", version=f"lusebench {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _PARSERS:
        add(sub)
    for command in sub.choices.values():
        # `lusebench simulate -v` as well as `lusebench -v simulate`; SUPPRESS keeps the main
        # parser's value when the subcommand does not repeat the flag.
        command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log debug messages")
        if command.formatter_class is argparse.HelpFormatter:
            command.formatter_class = _HelpFormatter
        elif command.formatter_class is argparse.RawDescriptionHelpFormatter:
            command.formatter_class = _RawHelpFormatter
    return parser


class _HelpFormatter(argparse.HelpFormatter):
    """Every option's help says its default or that it is required."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if not action.option_strings and action.nargs in ("*", "?"):
            return text  # argparse marks a '*' positional required, yet it may be left out
        if action.required:
            return f"{text} (required)"
        if not action.option_strings or action.nargs == 0 or "default" in text or "required" in text:
            return text  # positionals say what they are; flags are off unless given
        return f"{text} (default: {'none' if action.default is None else '%(default)s'})"


class _RawHelpFormatter(_HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """As :class:`_HelpFormatter`, with the description's and epilog's line breaks kept."""


def _no_library_progress_bars() -> None:
    """--no-progress silences the bars libraries draw too: transformers' "Loading weights" reads
    the Hugging Face switch when it is imported (here and in every stage replicate starts), or its
    own switch once imported."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    if "transformers" in sys.modules:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.command_line = shlex.join(["lusebench", *argv])  # what provenance records say made an output
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if getattr(args, "no_progress", False):
        _no_library_progress_bars()
    try:
        return int(args.func(args) or 0)
    except LusebenchError as error:
        print(f"lusebench {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lusebench {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
