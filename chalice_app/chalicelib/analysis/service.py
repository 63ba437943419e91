"""One analysis from request to report: gather the images, fit them to the
model, ask the model, build the report, save it when asked. I/O happens only
through what the caller passes in: the vision wrapper (Groq), an S3 client
(for keys) and an engine (for saving)."""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import Engine

from chalicelib.analysis import images as imaging
from chalicelib.analysis import inputs, reports
from chalicelib.analysis.inputs import AnalysisRequest
from chalicelib.analysis.render import report_view, structured
from chalicelib.analysis.vision import GroqVision
from infra.settings import Settings

logger = logging.getLogger(__name__)


def analyse(request: AnalysisRequest, settings: Settings, *, vision: GroqVision,
            s3=None, engine: Engine | None = None) -> dict[str, Any]:
    """The report as ``render.report_view`` shapes it."""
    started = time.monotonic()
    limits = {"max_image_bytes": settings.groq_max_image_bytes,
              "max_total_bytes": settings.groq_max_total_image_bytes}
    most = settings.groq_max_images
    if request.keys:
        chosen = inputs.load_keys(s3, settings.s3_bucket, request.keys[:most], **limits)
        imaging.check_sizes(chosen, **limits)
        skipped = [inputs.display_name(key) for key in request.keys[most:]]
    else:
        imaging.check_sizes(request.images, **limits)
        chosen = request.images[:most]
        skipped = [image.name for image in request.images[most:]]
    notices = [inputs.skipped_notice(len(chosen) + len(skipped), most, skipped)] if skipped else []

    budget = imaging.byte_budget(settings.groq_max_request_bytes, request.prompt, len(chosen))
    prepared = [imaging.prepare(image, budget_bytes=budget,
                                max_pixels=settings.groq_max_image_pixels)
                for image in chosen]
    resized = [p.name for p in prepared if p.resized]
    if resized:
        notices.append(f"Scaled down to fit the model's request limit: {', '.join(resized)}.")

    answer = vision.describe(request.prompt, prepared)
    file_names = [p.name for p in prepared]
    structure = structured(answer.markdown, images=[p.summary() for p in prepared],
                           notices=notices)
    structure["skipped"] = skipped
    report_id = created_at = None
    if request.save and engine is not None:
        with engine.begin() as conn:
            saved = reports.save(conn, file_names=file_names, prompt=request.prompt,
                                 model=answer.model, markdown=answer.markdown,
                                 structured=structure, usage=answer.usage)
        report_id, created_at = str(saved.id), saved.created_at.isoformat()
    logger.info("analysed %d image(s) with %s in %.1f s (%s tokens); report %s",
                len(prepared), answer.model, time.monotonic() - started,
                answer.usage.get("total_tokens", "?"), report_id or "not saved")
    return report_view(report_id=report_id, created_at=created_at, file_names=file_names,
                       prompt=request.prompt, model=answer.model, markdown=answer.markdown,
                       structure=structure, usage=answer.usage)


def saved_view(saved: reports.SavedReport) -> dict[str, Any]:
    return report_view(report_id=str(saved.id), created_at=saved.created_at.isoformat(),
                       file_names=list(saved.file_names), prompt=saved.prompt,
                       model=saved.model, markdown=saved.markdown,
                       structure=dict(saved.structured), usage=dict(saved.usage))
