"""The Services page, the create-service wizard, the service dashboard and its actions, the Configuration tab."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from runyard.console import charts, forms
from runyard.console.logs import dashboard_logs, deployment_stream_ids
from runyard.console.session import check_csrf
from runyard.console.web import Console, console_of, form_text, page, posted, redirect, render
from runyard.control.model.operation import START_DEPLOYMENT
from runyard.control.model.service import DELETED, Service
from runyard.errors import InvalidInput, NotFound, RunyardError

TABS = ("logs", "activity", "metrics", "configuration")


def _dashboard_url(service: Service, tab: str | None = None) -> str:
    return f"/console/services/{service.service_id}" + (f"?tab={tab}" if tab else "")


def _matches(find: str, *texts: str) -> bool:
    needle = find.lower()
    return not needle or any(needle in text.lower() for text in texts)


# -- Services ---------------------------------------------------------------------------------------------


@page
async def services_page(request: Request) -> Response:
    console = console_of(request)
    find = request.query_params.get("find", "").strip()
    services = [s for s in await console.call(console.control.services.find_all, console.scope) if s.status != DELETED]
    rows = [
        (service, console.service_url(service))
        for service in sorted(services, key=lambda s: s.created_at, reverse=True)
        if _matches(find, service.name, forms.status_words(service.status), console.service_url(service))
    ]
    return render(request, "services.html", nav="services", rows=rows, find=find, total=len(services))


# -- Create service ---------------------------------------------------------------------------------------


async def _wizard(
    request: Request,
    draft: forms.Draft,
    step: str,
    *,
    errors: list[str] | None = None,
    extra_env: int = 0,
    extra_tags: int = 0,
    status_code: int = 200,
) -> Response:
    console = console_of(request)
    connections = await console.call(console.control.connections.find_all, console.scope)
    configurations = await console.call(
        console.control.autoscaling.find_all, console.scope, name=None, latest_only=False
    )
    return render(
        request,
        "create_service.html",
        status_code=status_code,
        nav="services",
        draft=draft,
        step=step,
        steps=forms.STEPS,
        titles=forms.STEP_TITLES,
        hidden=draft.hidden_fields(shown=forms.STEP_FIELDS[step]),
        errors=errors or [],
        env_rows=list(draft.env) + [("", "")] * (extra_env + (0 if draft.env else 1)),
        tag_rows=list(draft.tags) + [("", "")] * extra_tags,
        connections=connections,
        configurations=[view.config for view in configurations if view.config.status == "ACTIVE"],
        runtimes=console.runtimes,
        cpus=forms.CPU_OPTIONS,
        memories=forms.MEMORY_OPTIONS,
        spec=_review_spec(draft, console) if step == "review" else None,
    )


def _review_spec(draft: forms.Draft, console: Console) -> object:
    try:
        return forms.service_spec(draft, runtimes=console.runtimes)
    except InvalidInput:
        return None


@page
async def create_service_page(request: Request) -> Response:
    return await _wizard(request, forms.Draft(), "source")


@page
async def create_service_post(request: Request) -> Response:
    console = console_of(request)
    form = await request.form()
    check_csrf(request, form_text(form, "csrf_token"))
    draft = forms.Draft.from_form(posted(form))
    step = form_text(form, "step") or "source"
    step = step if step in forms.STEPS else "source"
    action = form_text(form, "action") or "next"
    index = forms.STEPS.index(step)
    if action == "previous":
        return await _wizard(request, draft, forms.STEPS[max(index - 1, 0)])
    if action.startswith("edit_") and action[5:] in forms.STEPS:
        return await _wizard(request, draft, action[5:])
    if action == "add_env":
        return await _wizard(request, draft, step, extra_env=1)
    if action == "add_tag":
        return await _wizard(request, draft, step, extra_tags=1)
    if action == "next":
        errors = forms.step_errors(draft, step, runtimes=console.runtimes)
        if errors:
            return await _wizard(request, draft, step, errors=errors, status_code=400)
        return await _wizard(request, draft, forms.STEPS[min(index + 1, len(forms.STEPS) - 1)])
    # "Create and deploy": every step again (hidden fields can be edited), then the same command as CreateService.
    problems = forms.all_errors(draft, runtimes=console.runtimes)
    if problems:
        first_step = problems[0][0]
        return await _wizard(
            request, draft, first_step, errors=[m for s, m in problems if s == first_step], status_code=400
        )
    try:
        service, _ = await console.call(
            console.control.services.create,
            console.scope,
            name=draft.service_name,
            spec=forms.service_spec(draft, runtimes=console.runtimes),
            tags=forms.tags(draft),
        )
    except RunyardError as error:
        return await _wizard(request, draft, "review", errors=[error.message], status_code=400)
    return redirect(_dashboard_url(service), notice=f"Creating service {service.name}.", request=request)


# -- Service dashboard ------------------------------------------------------------------------------------


@page
async def dashboard_page(request: Request) -> Response:
    console = console_of(request)
    service = await console.service(request.path_params["service_id"])
    tab = request.query_params.get("tab", "logs")
    tab = tab if tab in TABS else "logs"
    find = request.query_params.get("find", "").strip()
    operations = await console.call(console.control.services.operations, console.scope, service.arn)
    try:
        autoscaling = (
            await console.call(
                console.control.autoscaling.describe, console.scope, service.auto_scaling_configuration_arn
            )
        ).config
    except RunyardError:  # a configuration deleted since (the service keeps its ARN): show the ARN alone
        autoscaling = None
    context: dict[str, Any] = {}
    if tab == "logs":
        context.update(await console.call(dashboard_logs, console.logs, service, operations, find))
    elif tab == "activity":
        context["logged"] = await console.call(deployment_stream_ids, console.logs, service)
        context["operations"] = [
            op
            for op in operations
            if _matches(
                find,
                op.id,
                forms.words(op.type),
                forms.words(op.status),
                op.type,
                op.status,
                *(["Manual deployment"] if op.type == START_DEPLOYMENT else []),
            )
        ]
    elif tab == "metrics":
        duration = request.query_params.get("range", "1h")
        context["duration"] = duration if duration in charts.RANGES else "1h"
        context["ranges"] = charts.RANGES
        context["graphs"] = await console.call(
            charts.graphs, console.metrics, service, context["duration"], console.control.deps.clock.now()
        )
    return render(
        request,
        "dashboard.html",
        nav="services",
        service=service,
        url=console.service_url(service),
        tab=tab,
        tabs=TABS,
        find=find,
        autoscaling=autoscaling,
        runtimes=console.runtimes,
        all_operations=operations,
        **context,
    )


@page
async def status(request: Request) -> Response:
    """The service's status for the dashboard's live status (static/console.js)."""
    console = console_of(request)
    try:
        service = await console.service(request.path_params["service_id"])
    except NotFound as error:
        return JSONResponse({"message": error.message}, status_code=404)
    return JSONResponse({"status": service.status, "words": forms.status_words(service.status)})


async def _service_action(request: Request, action: str) -> Response:
    console = console_of(request)
    form = await request.form()
    check_csrf(request, form_text(form, "csrf_token"))
    service = await console.service(request.path_params["service_id"])
    commands = console.control.services
    try:
        if action == "deploy":
            await console.call(commands.start_deployment, console.scope, service.arn)
            notice = f"Deploying the latest commit of {service.name}."
        elif action == "pause":
            await console.call(commands.pause, console.scope, service.arn)
            notice = f"Pausing {service.name}."
        else:
            await console.call(commands.resume, console.scope, service.arn)
            notice = f"Resuming {service.name}."
    except RunyardError as error:
        return redirect(_dashboard_url(service), error=error.message, request=request)
    return redirect(_dashboard_url(service, "activity"), notice=notice, request=request)


async def deploy(request: Request) -> Response:
    return await _service_action(request, "deploy")


async def pause(request: Request) -> Response:
    return await _service_action(request, "pause")


async def resume(request: Request) -> Response:
    return await _service_action(request, "resume")


@page
async def delete_page(request: Request) -> Response:
    console = console_of(request)
    service = await console.service(request.path_params["service_id"])
    return render(request, "delete_service.html", nav="services", service=service)


@page
async def delete_post(request: Request) -> Response:
    console = console_of(request)
    form = await request.form()
    check_csrf(request, form_text(form, "csrf_token"))
    service = await console.service(request.path_params["service_id"])
    if (form_text(form, "confirm") or "").strip() != "delete":
        return render(
            request,
            "delete_service.html",
            status_code=400,
            nav="services",
            service=service,
            error="To confirm the deletion, type delete in the field.",
        )
    try:
        await console.call(console.control.services.delete, console.scope, service.arn)
    except RunyardError as error:
        return redirect(_dashboard_url(service), error=error.message, request=request)
    return redirect("/console/services", notice=f"Deleting service {service.name}.", request=request)


# -- Configuration tab: Edit ------------------------------------------------------------------------------


async def _edit(
    request: Request, service: Service, edit: forms.ConfigEdit, errors: list[str], status_code: int = 200
) -> Response:
    console = console_of(request)
    configurations = await console.call(
        console.control.autoscaling.find_all, console.scope, name=None, latest_only=False
    )
    return render(
        request,
        "edit_configuration.html",
        status_code=status_code,
        nav="services",
        service=service,
        edit=edit,
        errors=errors,
        env_rows=[*edit.env, ("", "")],
        configurations=[view.config for view in configurations if view.config.status == "ACTIVE"],
        runtimes=console.runtimes,
        cpus=forms.CPU_OPTIONS,
        memories=forms.MEMORY_OPTIONS,
        code=service.spec.source.code,
    )


@page
async def edit_page(request: Request) -> Response:
    console = console_of(request)
    service = await console.service(request.path_params["service_id"])
    edit = forms.ConfigEdit.of(service.spec, service.auto_scaling_configuration_arn)
    return await _edit(request, service, edit, [])


@page
async def edit_post(request: Request) -> Response:
    console = console_of(request)
    form = await request.form()
    check_csrf(request, form_text(form, "csrf_token"))
    service = await console.service(request.path_params["service_id"])
    edit = forms.ConfigEdit.from_form(posted(form))
    if form_text(form, "action") == "add_env":
        return await _edit(request, service, replace(edit, env=(*edit.env, ("", ""))), [])
    try:
        update = forms.service_update(edit, service.spec, runtimes=console.runtimes)
        await console.call(console.control.services.update, console.scope, service.arn, update)
    except RunyardError as error:
        return await _edit(request, service, edit, [error.message], status_code=400)
    return redirect(
        _dashboard_url(service, "activity"), notice=f"Updating the configuration of {service.name}.", request=request
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/services", services_page, methods=["GET"]),
        Route("/services/create", create_service_page, methods=["GET"]),
        Route("/services/create", create_service_post, methods=["POST"]),
        Route("/services/{service_id}", dashboard_page, methods=["GET"]),
        Route("/services/{service_id}/status", status, methods=["GET"]),
        Route("/services/{service_id}/deploy", page(deploy), methods=["POST"]),
        Route("/services/{service_id}/pause", page(pause), methods=["POST"]),
        Route("/services/{service_id}/resume", page(resume), methods=["POST"]),
        Route("/services/{service_id}/delete", delete_page, methods=["GET"]),
        Route("/services/{service_id}/delete", delete_post, methods=["POST"]),
        Route("/services/{service_id}/configuration/edit", edit_page, methods=["GET"]),
        Route("/services/{service_id}/configuration/edit", edit_post, methods=["POST"]),
    ]
