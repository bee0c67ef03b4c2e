"""``latentctl steer`` and ``latentctl attributes``: faces that gain or lose attributes, and their names."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from latentctl import console, lookup
from latentctl.cli.options import Device, Json, Seed
from latentctl.errors import LatentctlError
from latentctl.latent import DEFAULT_KEEP_OTHERS, DEFAULT_STRENGTH, DEFAULT_VIEWS

FaceModel = Annotated[Path | None, typer.Option("--model", help="Face GAN folder, a name from 'latentctl "
                                                "models list', or a Hub repo user/repo[@rev] "
                                                "[default: gan-celeba].")]
Classifier = Annotated[Path | None, typer.Option("--classifier", help="Attribute classifier: folder, "
                                                 "registered name or user/repo[@rev] [default: classifier-celeba].")]
CHANGED_SHOWN = 3  # attributes listed per frame as the ones that changed most


class Method(str, Enum):
    gradient = "gradient"
    direction = "direction"
    label = "label"


Steps = Annotated[int, typer.Option("--steps", min=1, max=1000, rich_help_panel="Steering",
                                    help="Moves from the first frame to the last.")]
Strength = Annotated[float, typer.Option("--strength", min=0.01, max=100.0, rich_help_panel="Steering",
                                         help="Distance travelled in latent space over all steps (a latent "
                                         "has norm ~sqrt(latent size)).")]
KeepOthers = Annotated[float, typer.Option("--keep-others", min=0.0, rich_help_panel="Steering",
                                           help="Weight of keeping every other attribute where it was "
                                           "(disentanglement); 0 turns it off. With --method direction, any "
                                           "value > 0 projects their directions out; on a model trained with "
                                           "--condition attributes it also holds their inputs, which with 0 "
                                           "follow the targets as the data correlates them.")]

Views = Annotated[int, typer.Option("--views", min=1, max=16, rich_help_panel="Steering",
                                    help="Faces the gradient method reads per face and step: the face and "
                                    "views-1 drawn from nearby latents, whose average it follows (harder to "
                                    "fool; each view costs a generator pass). 1: the face alone, fastest.")]


def _check_until(value: float | None) -> float | None:
    if value is not None and not 0.5 < value < 1:
        raise typer.BadParameter("must be a probability above 0.5 and below 1, such as 0.9")
    return value


Until = Annotated[float | None, typer.Option("--until", callback=_check_until, rich_help_panel="Steering",
                                             help="Stop a face once every target's probability is past P "
                                             "(below 1-P for --away-from).")]
Reach = Annotated[float, typer.Option("--reach", min=1.0, max=4.0, rich_help_panel="Steering",
                                      help="A model trained with --condition attributes: how far the targets' "
                                      "inputs turn (label and gradient), 1 being the other value; up to 4 pushes "
                                      "them past what training showed, for attributes the generator draws "
                                      "faintly (with --until, each face stops when it is read).")]
Samples = Annotated[int, typer.Option("--samples", min=100, max=1_000_000, rich_help_panel="Steering",
                                      help="Faces sampled to fit the attribute directions (--method direction; "
                                      "fitted once per generator and classifier, then cached).")]


def register(app: typer.Typer) -> None:
    app.command("steer")(steer)
    app.command("attributes")(attributes)


def steer(
    out: Annotated[Path, typer.Argument(help="Output .png (one row per face, one column per frame) or .gif.")]
    = Path("steer.png"),
    to: Annotated[list[str] | None, typer.Option("--to", help="Attribute to add (repeatable), e.g. Male, "
                                                 "smiling, eyeglasses.", show_default=False)] = None,
    away_from: Annotated[list[str] | None, typer.Option("--away-from", help="Attribute to remove (repeatable).",
                                                        show_default=False)] = None,
    model: FaceModel = None,
    classifier: Classifier = None,
    n: Annotated[int, typer.Option("--n", min=1, max=1024, help="Faces (rows), of seeds S, S+1, ...")] = 4,
    frames: Annotated[int, typer.Option("--frames", min=2, max=256, help="Snapshots per face (columns), the "
                                        "first being the unchanged face.")] = 8,
    from_noise: Annotated[Path | None, typer.Option("--from-noise", help="Steer these latents (a file written "
                                                    "by 'latentctl sample --save-latents') instead of seeds.",
                                                    dir_okay=False)] = None,
    method: Annotated[Method, typer.Option("--method", rich_help_panel="Steering", help="gradient: follow the "
                                           "classifier's gradient; direction: move along a fitted linear "
                                           "direction (instant once fitted); label: turn the attribute input of "
                                           "a model trained with --condition attributes, the noise fixed.")
                      ] = Method.gradient,
    steps: Steps = 40,
    strength: Strength = DEFAULT_STRENGTH,
    keep_others: KeepOthers = DEFAULT_KEEP_OTHERS,
    until: Until = None,
    views: Views = DEFAULT_VIEWS,
    reach: Reach = 1.0,
    samples: Samples = 10_000,
    frame_ms: Annotated[int, typer.Option("--frame-ms", min=10, max=5000, help="GIF frame time.")] = 150,
    scale: Annotated[int | None, typer.Option("--scale", min=1, max=16, help="Nearest-neighbour upscaling "
                                              "[default: 2 under 64 px, else 1].")] = None,
    device: Device = "auto",
    seed: Seed = 0,
    json_output: Json = False,
) -> None:
    """Turn faces towards (or away from) attributes, keeping the others, as a strip of frames per face.

    The generator and the classifier stay frozen; only the latent of each face moves. With the gradient
    method every move follows the classifier's gradient through the generator, with a penalty on any
    other attribute that drifts (--keep-others) and one on leaving the region of latents the generator
    was trained on. Names are CelebA's, matched ignoring case and underscores; 'latentctl attributes'
    lists them. 'latentctl eval steer' measures how well it works.

    A model trained with `train gan --condition attributes` starts each face from a real attribute mix
    without the --to targets (with the --away-from ones) and turns those inputs over the frames:
    alone with --method label, together with the gradient's moves by default.

    Examples:

        latentctl steer --to Male --frames 8 out.png
        latentctl steer --to smiling --away-from eyeglasses --n 8 --until 0.9 smile.gif
        latentctl steer --to Male --keep-others 0 tangled.png
        latentctl steer --to Eyeglasses --method direction --json glasses.png
        latentctl sample --model gan-celeba --n 4 --save-latents z.safetensors faces.png
        latentctl steer --from-noise z.safetensors --to Smiling smiles.png
        latentctl steer --model gan-attributes --to Eyeglasses --method label glasses.png
        latentctl steer --model gan-attributes --to Smiling --method label --reach 3 --until 0.99 smiles.png
    """
    from latentctl import images as image_io
    from latentctl.latent.attributes import MAX_REACH, steering_attributes
    from latentctl.latent.sampling import load_latents, noise_for_seeds
    from latentctl.latent.steer import SteerSettings
    from latentctl.latent.steer import steer as run_steer

    if frames > steps + 1:
        raise typer.BadParameter(f"{frames} frames need at least {frames - 1} steps", param_hint="--frames")
    image_io.check_writable(out)
    if out.suffix.lower() not in (".png", ".gif"):
        raise typer.BadParameter(f"{out.name}: end the output name in .png or .gif", param_hint="OUT")
    session = load_session(model, classifier, device, to, away_from)
    generator, config = session["generator"], session["config"]
    check_method(method, session)
    check_reach(reach, session)
    if from_noise is not None:
        noise = load_latents(from_noise, config.latent_dim)
        seeds: list[int | None] = [None] * noise.shape[0]
    else:
        seeds = list(range(seed, seed + n))
        noise = noise_for_seeds(seeds, config.latent_dim)
    attributes = None
    if session["conditioned"]:  # face i's attributes drawn with seed S+i, as 'sample' draws them
        attributes = steering_attributes(generator.attribute_prior, config.labels, session["targets"],
                                         list(range(seed, seed + noise.shape[0])), method is Method.label,
                                         keep_others=keep_others > 0, reach=reach)
    settings = SteerSettings(method=method.value, steps=steps, strength=strength, keep_others=keep_others,
                             until=until, frames=frames, views=views, seed=seed)
    direction = None
    if method is Method.direction:
        fitted = session_directions(session, samples)
        direction = fitted.move([(t.index, t.sign) for t in session["targets"]], keep=keep_others > 0)
    console.info(f"steering {noise.shape[0]} face(s) {_describe(session['targets'])} "
                 f"({method.value}, {steps} steps, strength {strength:g}, keep-others {keep_others:g})")
    result = run_steer(generator, session["classifier"], noise, session["targets"], settings, direction,
                       attributes=attributes)
    image_io.save_walks(result.images, out, scale=scale or (2 if config.image_size < 64 else 1), frame_ms=frame_ms)
    report = _report(result, session, seeds)
    for face in report:
        first, last = face["frames"][0]["targets"], face["frames"][-1]["targets"]
        moves = ", ".join(f"{name} {first[name]:.2f} -> {last[name]:.2f}" for name in first)
        console.info(f"face {face['face']}{'' if face['seed'] is None else ' (seed ' + str(face['seed']) + ')'}: "
                     f"{moves}")
    console.info(f"wrote {noise.shape[0]} x {frames} frames to {out}")
    short = _not_reached(report, session["targets"])
    for target in (t for t in session["targets"] if t.name in short):
        missed = f"reach {target.name} (read below" if target.sign > 0 else f"lose {target.name} (read above"
        further = f"--reach {min(2 * reach, MAX_REACH):g}" if session["conditioned"] and reach < MAX_REACH else None
        advice = (f"try a longer walk, --strength {strength * 1.5:g}"
                  + (", a weaker --keep-others" if keep_others > 0 and method is Method.gradient else "")
                  + (f", {further}" if further and method is Method.gradient else "")
                  + (" or --method direction" if method is Method.gradient and not session["conditioned"] else ""))
        if method is Method.label:  # the noise is fixed: only a longer turn of the input or the noise can help
            advice = ("the generator does not show it from its input alone: try "
                      + (f"{further} or " if further else "") + "--method gradient")
        console.warn(f"{short[target.name]} of {len(report)} faces did not {missed} 0.5 at the last frame): "
                     + advice)
    if json_output:
        console.emit_json({"command": "steer", "model": str(session["model_dir"]),
                           "classifier": str(session["classifier_dir"]), "output": str(out),
                           "method": method.value, "to": [t.name for t in session["targets"] if t.sign > 0],
                           "away_from": [t.name for t in session["targets"] if t.sign < 0],
                           "settings": {"steps": steps, "strength": strength, "keep_others": keep_others,
                                        "until": until, "views": views, "frames": frames, "reach": reach,
                                        "frame_steps": result.frame_steps},
                           "not_reached": short, "faces": report})
    else:
        console.emit_path(out)


def attributes(
    classifier: Classifier = None,
    device: Device = "auto",
    json_output: Json = False,
) -> None:
    """List the attribute names steering and classification know, with their base rates.

    With a trained classifier: its attributes, the share of training faces that have each (base rate) and
    how well the classifier reads each on the validation split (balanced accuracy). Without one: CelebA's
    40 names.

    Examples:

        latentctl attributes
        latentctl attributes --classifier classifier-celeba --json
    """
    from latentctl.data.celeba import CELEBA_ATTRIBUTES
    from latentctl.store import read_config

    classifier_dir = lookup.resolve_model(classifier, "classifier-celeba")
    if classifier is None and not classifier_dir.exists():
        rows = [{"name": name} for name in CELEBA_ATTRIBUTES]
        console.info("no classifier trained yet: CelebA's attribute names "
                     "(train one with 'latentctl train classifier' for base rates)")
        source = None
    else:
        config = read_config(classifier_dir, "classifier", option="--classifier")
        rates = config.training.get("base_rates") or {}
        balanced = config.training.get("validation", {}).get("balanced_accuracy", {})
        rows = [{"name": name, **({"base_rate": rates[name]} if name in rates else {}),
                 **({"balanced_accuracy": balanced[name]} if name in balanced else {})} for name in config.labels]
        source = str(classifier_dir)
    if json_output:
        console.emit_json({"command": "attributes", "classifier": source, "attributes": rows})
        return
    columns = ["attribute"] + [key for key in ("base_rate", "balanced_accuracy") if any(key in r for r in rows)]
    console.print_table(f"attributes ({source})" if source else "CelebA attributes", columns,
                        [[r["name"], *(_percent(r.get(key)) for key in columns[1:])] for r in rows])
    for row in rows:
        console.emit_path(row["name"])


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}%"


# ------------------------------------------------------------------------------------------------ shared

def load_session(model: Path | None, classifier: Path | None, device: str, to: list[str] | None,
                  away_from: list[str] | None) -> dict[str, Any]:
    """Load the generator and the classifier, check they pair, and resolve the target names (usage errors
    name the flag). Shared with ``eval steer``."""
    from latentctl.device import resolve_device
    from latentctl.latent.attributes import check_pair, match_attribute
    from latentctl.latent.steer import Target
    from latentctl.store import load_model

    if not to and not away_from:
        raise typer.BadParameter("name at least one attribute with --to or --away-from", param_hint="--to")
    torch_device = resolve_device(device)
    model_dir = lookup.resolve_model(model, "gan-celeba")
    classifier_dir = lookup.resolve_model(classifier, "classifier-celeba")
    generator, config = load_model(model_dir, "gan", torch_device)
    if not classifier_dir.exists():
        raise LatentctlError(f"no attribute classifier at {classifier_dir}: steering needs one",
                             hint="train one with 'latentctl train classifier' (at the generator's --size), "
                                  "or pass --classifier PATH")
    classifier_model, classifier_config = load_model(classifier_dir, "classifier", torch_device,
                                                     option="--classifier")
    check_pair(config, classifier_config, model_dir, classifier_dir)
    names = classifier_config.labels
    targets, seen = [], {}
    for values, sign, flag in ((to or [], +1, "--to"), (away_from or [], -1, "--away-from")):
        for value in values:
            try:
                name = match_attribute(value, names)
            except LatentctlError as error:
                raise typer.BadParameter(f"{error.message}; {error.hint}", param_hint=flag) from None
            if name in seen and seen[name] != sign:
                raise typer.BadParameter(f"{name} is both in --to and --away-from", param_hint=flag)
            if name not in seen:
                seen[name] = sign
                targets.append(Target(names.index(name), name, sign))
    return {"generator": generator, "config": config, "classifier": classifier_model,
            "classifier_config": classifier_config, "model_dir": model_dir, "classifier_dir": classifier_dir,
            "names": names, "targets": targets, "device": torch_device,
            "conditioned": config.conditioned_on_attributes}


def check_method(method: Method, session: dict[str, Any]) -> None:
    """The label method needs a generator conditioned on attributes; directions are fitted to one without."""
    if method is Method.label and not session["conditioned"]:
        raise typer.BadParameter(f"the model takes no attributes to turn ({session['model_dir']}): it needs a "
                                 "model trained with 'latentctl train gan --condition attributes'",
                                 param_hint="--method")
    if method is Method.direction and session["conditioned"]:
        raise typer.BadParameter(f"a model conditioned on attributes ({session['model_dir']}) takes --method label "
                                 "or gradient: directions are fitted to an unconditional GAN's noise",
                                 param_hint="--method")


def check_reach(reach: float, session: dict[str, Any]) -> None:
    """--reach turns attribute inputs, which only a generator conditioned on attributes has."""
    if reach != 1 and not session["conditioned"]:
        raise typer.BadParameter(f"the model takes no attributes to turn ({session['model_dir']}): --reach needs a "
                                 "model trained with 'latentctl train gan --condition attributes'",
                                 param_hint="--reach")


def session_directions(session: dict[str, Any], samples: int):
    """Return the attribute directions of the session's generator and classifier: cached, or fitted now on
    ``samples`` generated faces (saying so on stderr). Shared with ``eval steer``."""
    from latentctl.latent.attributes import load_directions

    fitted, _ = load_directions(
        session["model_dir"], session["classifier_dir"], session["generator"], session["classifier"],
        session["names"], session["config"].latent_dim, samples,
        on_fit=lambda count: console.info(f"fitting attribute directions on {count:,} generated faces "
                                          "(once per generator and classifier; cached)"))
    return fitted


def _describe(targets: list) -> str:
    towards = [t.name for t in targets if t.sign > 0]
    away = [t.name for t in targets if t.sign < 0]
    return " and ".join(part for part in (f"towards {', '.join(towards)}" if towards else "",
                                          f"away from {', '.join(away)}" if away else "") if part)


def _not_reached(report: list[dict[str, Any]], targets: list) -> dict[str, int]:
    """Per target that some faces missed: how many faces the classifier reads on its wrong side at the end."""
    counts = {}
    for target in targets:
        last = [face["frames"][-1]["targets"][target.name] for face in report]
        missed = sum(p <= 0.5 if target.sign > 0 else p >= 0.5 for p in last)
        if missed:
            counts[target.name] = missed
    return counts


def _report(result: Any, session: dict[str, Any], seeds: list[int | None]) -> list[dict[str, Any]]:
    """Per face and frame: the targets' probabilities and the other attributes that changed most."""
    from latentctl.latent.attributes import present_attributes

    names, targets = session["names"], session["targets"]
    target_names = {t.name for t in targets}
    faces = []
    for face, probabilities in enumerate(result.probabilities.tolist()):  # (F, A) per face
        start = probabilities[0]
        frames = []
        for frame, (step, row) in enumerate(zip(result.frame_steps, probabilities, strict=True)):
            changes = sorted(((name, row[i] - start[i]) for i, name in enumerate(names) if name not in target_names),
                             key=lambda item: -abs(item[1]))[:CHANGED_SHOWN]
            frames.append({"frame": frame, "step": min(step, int(result.steps_taken[face])),
                           "targets": {t.name: round(row[t.index], 4) for t in targets},
                           "changed": [{"attribute": name, "from": round(start[names.index(name)], 4),
                                        "to": round(row[names.index(name)], 4)} for name, _ in changes]})
        about: dict[str, Any] = {}
        if result.attributes is not None:  # what the generator's attribute input said, first and last frame
            labels = session["config"].labels
            about["attributes"] = {when: present_attributes(labels, result.attributes[face, frame])
                                   for when, frame in (("from", 0), ("to", -1))}
        faces.append({"face": face, "seed": seeds[face], "steps_taken": int(result.steps_taken[face]),
                      **about, "frames": frames})
    return faces
