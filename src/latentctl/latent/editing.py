"""Editing a real photo as one call: ``edit_photo`` inverts it into a face GAN (``latent.inversion``), then
steers the latent found with ``steer``'s own session and options (``latent.session``), and writes a strip that
starts with the photo itself, then its reconstruction, then the frames of the walk."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from latentctl.latent.inversion import InversionReport, InvertOptions
from latentctl.latent.session import SteerOptions, SteerReport

if TYPE_CHECKING:
    import torch


@dataclass
class EditReport:
    """What ``edit_photo`` made: the inversion and the steering of what it found."""

    inversion: InversionReport
    steering: SteerReport
    out: Path | None

    @property
    def images(self) -> torch.Tensor:
        """The strip (1, 1 + F, C, H, W) in [-1, 1]: the photo, then the frames (the first is the reconstruction)."""
        import torch

        return torch.cat([self.inversion.targets[:1, None], self.steering.images], dim=1)

    def to_json(self) -> dict[str, Any]:
        """The ``edit --json`` document, without its "command" key: ``steer``'s, the photo and the inversion's."""
        inverted = self.inversion.to_json()
        return {**self.steering.to_json(), "output": None if self.out is None else str(self.out),
                "photo": str(self.inversion.photos[0]),
                "inversion": {key: inverted[key] for key in ("encoder", "pixel_range", "settings", "seconds", "notes")}
                | {key: value for key, value in inverted["photos"][0].items() if key not in ("photo", "index")}}


def edit_photo(photo: str | Path, *, to: Sequence[str] = (), away_from: Sequence[str] = (),
               out: str | Path | None = None, options: SteerOptions | None = None,
               invert_options: InvertOptions | None = None, model: str | Path | None = None,
               classifier: str | Path | None = None, device: str = "auto", encoder: str | Path | None = None,
               use_encoder: bool = True) -> EditReport:
    """Invert ``photo`` into a face GAN (default ``gan-celeba``), then turn it towards the ``to`` attributes
    and away from the ``away_from`` ones with ``steer``'s ``options`` (its ``n`` and ``seed`` of faces unused),
    and write the strip (.png or .gif) to ``out`` when given.

    The classifier (default ``classifier-celeba``) steers, and its features guide the inversion. Every setting
    is checked before the inversion starts. ``encoder`` and ``use_encoder`` choose the inversion's start,
    as ``invert``'s."""
    from latentctl import images as image_io
    from latentctl.latent.inversion import check_face_model, invert
    from latentctl.latent.session import SteeringSession, check_request, steer_faces
    from latentctl.lookup import resolve_model
    from latentctl.store import read_config

    options = replace(options or SteerOptions(), n=1)
    out = check_request(to, away_from, out, options)
    model_dir = resolve_model(model, "gan-celeba")
    check_face_model(read_config(model_dir, ("gan", "cgan")), model_dir)
    session = SteeringSession.load(model_dir, classifier, device)
    session.check(to, away_from, options)
    inversion = invert([photo], options=invert_options, session=session, encoder=encoder, use_encoder=use_encoder)
    steering = steer_faces(session, to=to, away_from=away_from, options=options, noise=inversion.latents,
                           attributes=inversion.inversion.attributes)
    report = EditReport(inversion, steering, out)
    if out is not None:
        scale = options.scale or (2 if session.config.image_size < 64 else 1)
        image_io.save_walks(report.images, out, scale=scale, frame_ms=options.frame_ms)
    return report
