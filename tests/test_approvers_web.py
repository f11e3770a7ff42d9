"""
`WebApprover`: the HTTP API against a real uvicorn server (auth, CSRF,
once-only answers, escaping, timeouts, the live stream), and the page in a
real headless Chromium, driven by Playwright: twenty concurrent workers
ask, the page shows each with its attribution, a click reaches exactly
that worker. The Chromium test writes docs/img/console.png.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import threading
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

import capscope as cs  # noqa: E402
from capscope.approvers import WebApprover, printable  # noqa: E402
from capscope.approvers.web import serve_in_background  # noqa: E402
from capscope.policies import (  # noqa: E402
    CapabilityPolicy,
    RuntimeContextOverlay,
    ToolApprovalPolicy,
)

ROOT = CapabilityPolicy.unrestricted()
SCREENSHOT = Path(__file__).parent.parent / "docs" / "img" / "console.png"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
XSS = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'


@cs.needs_approval("deploy", reason="ships code to an environment")
def deploy(env: str, version: str = "latest") -> str:
    return f"deployed {version} to {env}"


@cs.needs_approval("deploy_async", reason="ships code to an environment")
async def deploy_async(env: str) -> str:
    return f"deployed to {env}"


class Console:
    """A served approver, its URL and token, and sync workers that ask it."""

    def __init__(self, **options):
        self.approver = WebApprover(**options)
        self.url, self.token, self.stop = serve_in_background(self.approver)
        self.pool = concurrent.futures.ThreadPoolExecutor(32)
        self.bearer = {"Authorization": f"Bearer {self.token}"}
        self.clients = []

    def client(self):
        client = httpx.Client(base_url=self.url)
        self.clients.append(client)
        return client

    def ask(self, worker, *args, run="r-1", calls=1, policy_timeout=None):
        """A worker (thread) calling deploy(*args) *calls* times."""

        def work():
            outcomes = []
            with cs.using(
                execution=ROOT,
                approval=ToolApprovalPolicy(
                    handler=self.approver, timeout=policy_timeout
                ),
                overlay=RuntimeContextOverlay(run_id=run, worker_id=worker),
            ):
                for _ in range(calls):
                    try:
                        outcomes.append(f"ran: {deploy(*args)}")
                    except cs.ApprovalDenied as exc:
                        outcomes.append(f"refused: {exc}")
            return outcomes

        return self.pool.submit(work)

    def post(self, request_id, answer, headers=None, **kwargs):
        return httpx.post(
            f"{self.url}api/requests/{request_id}",
            json={"answer": answer},
            headers=self.bearer if headers is None else headers,
            **kwargs,
        )

    def close(self):
        for client in self.clients:
            client.close()
        self.stop()
        self.pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
def console():
    consoles = []

    def make(**options):
        made = Console(**options)
        consoles.append(made)
        return made

    yield make
    for made in consoles:
        made.close()


def pending(console, count=1):
    return console.approver.queue.wait_pending(count, timeout=30)


# -- authentication ------------------------------------------------------------


def test_without_the_token_nothing_is_shown_or_answered(console):
    c = console()
    c.ask("w-1", "prod")
    [entry] = pending(c)
    for path in ("api/pending", "api/events"):
        assert 401 == httpx.get(c.url + path).status_code
        wrong = {"Authorization": "Bearer " + "x" * 43}
        assert 401 == httpx.get(c.url + path, headers=wrong).status_code
    assert 401 == c.post(entry.id, "once", headers={}).status_code
    assert (
        401
        == c.post(
            entry.id, "once", headers={"Authorization": c.token}
        ).status_code
    )
    page = httpx.get(c.url)
    assert 200 == page.status_code
    assert 'name="token"' in page.text  # the sign-in form, nothing else
    assert "deploy" not in page.text
    assert entry.id not in page.text
    assert "pending" == c.approver.queue.state(entry.id)


def test_a_bearer_answer_reaches_the_worker(console):
    c = console()
    work = c.ask("w-1", "prod")
    [entry] = pending(c)
    listed = httpx.get(c.url + "api/pending", headers=c.bearer).json()
    assert [entry.id] == [item["id"] for item in listed]
    assert ("w-1", "r-1", "deploy") == (
        listed[0]["worker_id"],
        listed[0]["run_id"],
        listed[0]["tool"],
    )
    assert [["env", "prod"], ["version", "latest"]] == listed[0]["arguments"]
    response = c.post(entry.id, "once")
    assert 200 == response.status_code
    assert {
        "id": entry.id,
        "answer": "once",
        "tool": "deploy",
    } == response.json()
    assert ["ran: deployed latest to prod"] == work.result(30)


def test_an_answer_is_given_once_and_unknown_ids_are_refused(console):
    c = console()
    work = c.ask("w-1", "prod")
    [entry] = pending(c)
    assert 200 == c.post(entry.id, "deny").status_code
    second = c.post(entry.id, "once")
    assert 409 == second.status_code
    assert "already denied" in second.json()["error"]
    assert 404 == c.post("not-an-id", "once").status_code
    assert ["refused: denied at the web console"] == work.result(30)


def test_concurrent_answers_to_one_request_only_one_wins(console):
    c = console()
    work = c.ask("w-1", "prod")
    [entry] = pending(c)
    answers = ["once", "deny"] * 8
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        codes = list(
            pool.map(lambda a: c.post(entry.id, a).status_code, answers)
        )
    assert 1 == codes.count(200)
    assert 15 == codes.count(409)
    winner = answers[codes.index(200)]
    expected = (
        "ran: deployed latest to prod"
        if winner == "once"
        else "refused: denied at the web console"
    )
    assert [expected] == work.result(30)


def test_always_is_remembered_for_that_worker_only(console):
    c = console()
    work = c.ask("w-1", "prod", calls=2)
    [entry] = pending(c)
    assert 200 == c.post(entry.id, "always").status_code
    # The repeat in the same worker is settled without asking.
    assert ["ran: deployed latest to prod"] * 2 == work.result(30)
    assert [] == c.approver.pending()
    # Another worker making the same call is asked.
    other = c.ask("w-2", "prod")
    [entry] = pending(c)
    assert "w-2" == entry.request.overlay.worker_id
    assert 200 == c.post(entry.id, "once").status_code
    assert ["ran: deployed latest to prod"] == other.result(30)


def test_once_is_not_remembered(console):
    c = console()
    work = c.ask("w-1", "prod", calls=2)
    [first] = pending(c)
    assert 200 == c.post(first.id, "once").status_code
    second = c.approver.queue.wait_pending(1, timeout=30)[0]
    assert second.id != first.id
    assert 200 == c.post(second.id, "deny").status_code
    assert [
        "ran: deployed latest to prod",
        "refused: denied at the web console",
    ] == work.result(30)


def test_a_deny_carries_its_reason(console):
    c = console()
    work = c.ask("w-1", "prod")
    [entry] = pending(c)
    response = httpx.post(
        f"{c.url}api/requests/{entry.id}",
        json={"answer": "deny", "reason": "not on a Friday"},
        headers=c.bearer,
    )
    assert 200 == response.status_code
    assert ["refused: not on a Friday"] == work.result(30)


def test_bad_answers_are_refused(console):
    c = console()
    c.ask("w-1", "prod")
    [entry] = pending(c)
    url = f"{c.url}api/requests/{entry.id}"
    assert (
        422
        == httpx.post(
            url, json={"answer": "yes"}, headers=c.bearer
        ).status_code
    )
    assert 422 == httpx.post(url, json=["once"], headers=c.bearer).status_code
    assert (
        422
        == httpx.post(
            url, json={"answer": "deny", "reason": 5}, headers=c.bearer
        ).status_code
    )
    form = httpx.post(url, data={"answer": "once"}, headers=c.bearer)
    assert 415 == form.status_code
    big = httpx.post(
        url, json={"answer": "deny", "reason": "x" * 10_000}, headers=c.bearer
    )
    assert 413 == big.status_code
    assert "pending" == c.approver.queue.state(entry.id)


# -- sessions and CSRF ------------------------------------------------------------


def signed_in(c):
    client = c.client()
    response = client.post("login", data={"token": c.token})
    assert 303 == response.status_code
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert "Path=/" in cookie
    page = client.get("")
    assert 200 == page.status_code
    csrf = page.text.split('name="csrf-token" content="')[1].split('"')[0]
    return client, csrf


def test_signing_in_needs_the_token(console):
    c = console()
    client = c.client()
    wrong = client.post("login", data={"token": "guess"})
    assert 401 == wrong.status_code
    assert "set-cookie" not in wrong.headers
    foreign = client.post(
        "login",
        data={"token": c.token},
        headers={"Origin": "http://evil.example"},
    )
    assert 403 == foreign.status_code
    assert "set-cookie" not in foreign.headers


def test_a_session_post_needs_the_csrf_token_and_its_own_origin(console):
    c = console()
    work = c.ask("w-1", "prod")
    [entry] = pending(c)
    client, csrf = signed_in(c)
    path = f"api/requests/{entry.id}"
    origin = c.url.rstrip("/")
    refused = [
        {},  # no CSRF token
        {"X-CSRF-Token": "wrong"},
        {"X-CSRF-Token": csrf, "Origin": "http://evil.example"},
        {"X-CSRF-Token": csrf, "Origin": "null"},
        # another port of the same host is another origin
        {"X-CSRF-Token": csrf, "Origin": "http://127.0.0.1:1"},
        {"X-CSRF-Token": csrf, "Sec-Fetch-Site": "same-site"},
        {"X-CSRF-Token": csrf, "Sec-Fetch-Site": "cross-site"},
    ]
    for headers in refused:
        response = client.post(path, json={"answer": "once"}, headers=headers)
        assert 403 == response.status_code, headers
    assert "pending" == c.approver.queue.state(entry.id)
    ok = client.post(
        path,
        json={"answer": "once"},
        headers={
            "X-CSRF-Token": csrf,
            "Origin": origin,
            "Sec-Fetch-Site": "same-origin",
        },
    )
    assert 200 == ok.status_code
    assert ["ran: deployed latest to prod"] == work.result(30)
    # The session also reads the list.
    assert [] == client.get("api/pending").json()


def test_a_foreign_host_header_is_refused(console):
    """DNS rebinding: a page of evil.example resolved to 127.0.0.1."""
    c = console()
    for path in ("", "api/pending"):
        response = httpx.get(
            c.url + path, headers={**c.bearer, "Host": "evil.example"}
        )
        assert 400 == response.status_code


def test_every_response_is_locked_down(console):
    c = console()
    for response in (
        httpx.get(c.url),
        httpx.get(c.url + "api/pending"),
        httpx.get(c.url + "static/console.js"),
    ):
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "DENY" == response.headers["x-frame-options"]
        assert "nosniff" == response.headers["x-content-type-options"]
        assert "no-store" == response.headers["cache-control"]
    assert 404 == httpx.get(c.url + "static/../web.py").status_code
    assert 404 == httpx.get(c.url + "static/web.py").status_code


def test_a_non_loopback_bind_needs_an_explicit_flag():
    with pytest.raises(ValueError, match="not a loopback address"):
        serve_in_background(WebApprover(), host="0.0.0.0")  # noqa: S104
    with pytest.raises(ValueError, match="not a loopback address"):
        serve_in_background(WebApprover(), host="::")


# -- escaping ---------------------------------------------------------------------


def test_arguments_are_data_never_markup(console):
    c = console()
    c.ask("w-1", XSS + "\u202e\x1b[2J")
    pending(c)
    [item] = httpx.get(c.url + "api/pending", headers=c.bearer).json()
    env = dict(item["arguments"])["env"]
    # The markup comes back as the text it is; control and bidi
    # characters as escapes.
    assert env == XSS + "\\u202e\\x1b[2J"
    client, _ = signed_in(c)
    assert XSS not in client.get("").text  # the page itself holds no data
    assert "\\x1b" == printable("\x1b")


# -- timeouts, withdrawal, the queue's bound, closing -------------------------------


def test_no_answer_in_time_denies(console):
    c = console(timeout=0.5)
    work = c.ask("w-1", "prod")
    [entry] = pending(c)
    assert [
        "refused: no answer at the web console within 0.5 s"
    ] == work.result(30)
    late = c.post(entry.id, "once")
    assert 409 == late.status_code
    assert "timed out" in late.json()["error"]


def test_a_request_the_policy_gave_up_on_is_withdrawn(console):
    c = console(timeout=60)
    work = c.ask("w-1", "prod", policy_timeout=0.3)
    [entry] = pending(c)
    [outcome] = work.result(30)
    assert outcome == "refused: the approval handler timed out after 0.3 s"
    # capscope cancelled the handler: the request leaves the page.
    c.approver.queue.wait_pending(0, timeout=5)
    late = c.post(entry.id, "once")
    assert 409 == late.status_code
    assert "withdrawn" in late.json()["error"]
    assert [] == c.approver.pending()


def test_a_full_queue_denies_at_once(console):
    c = console(max_pending=2)
    first = [c.ask(f"w-{i}", f"env-{i}") for i in range(2)]
    pending(c, 2)
    extra = c.ask("w-9", "prod")
    assert ["refused: the approval queue is full (2 requests waiting)"] == (
        extra.result(30)
    )
    for entry in c.approver.pending():
        assert 200 == c.post(entry.id, "once").status_code
    assert all(f.result(30)[0].startswith("ran:") for f in first)


def test_stopping_the_console_denies_what_is_pending(console):
    c = console()
    work = c.ask("w-1", "prod")
    pending(c)
    c.stop()
    assert ["refused: the approval console closed"] == work.result(30)
    later = c.ask("w-2", "prod")
    assert ["refused: the approval console closed: nobody can answer"] == (
        later.result(30)
    )


# -- async tools, trio, the live stream ----------------------------------------------


def test_async_tools_under_asyncio_and_trio(console):
    import trio

    c = console()

    async def agent():
        policy = ToolApprovalPolicy(handler=c.approver, timeout=None)
        with cs.using(
            execution=ROOT,
            approval=policy,
            overlay=RuntimeContextOverlay(worker_id="w-async"),
        ):
            return await deploy_async("staging")

    for run in (lambda: asyncio.run(agent()), lambda: trio.run(agent)):
        done = c.pool.submit(run)
        [entry] = pending(c)
        assert "w-async" == entry.request.overlay.worker_id
        assert 200 == c.post(entry.id, "once").status_code
        assert "deployed to staging" == done.result(30)


def events_of(lines):
    """Server-sent events as (name, data) pairs."""
    name = None
    for line in lines:
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            yield name, json.loads(line[len("data: ") :])


def test_the_stream_lists_pending_requests_and_decisions(console):
    c = console()
    with httpx.stream(
        "GET", c.url + "api/events", headers=c.bearer, timeout=30
    ) as stream:
        assert "text/event-stream" in stream.headers["content-type"]
        events = events_of(stream.iter_lines())
        assert ("pending", []) == next(events)
        work = c.ask("w-7", "prod", run="r-9")
        seen = {}
        while not (seen.get("pending") and seen.get("ask")):
            name, data = next(events)
            if name == "pending" and data:
                seen["pending"] = data
            if name == "feed" and any(r["action"] == "ask" for r in data):
                seen["ask"] = [r for r in data if r["action"] == "ask"]
        [item] = seen["pending"]
        assert ("w-7", "r-9", "deploy") == (
            item["worker_id"],
            item["run_id"],
            item["tool"],
        )
        [ask] = seen["ask"]
        assert ("w-7", "r-9", "deploy") == (
            ask["worker_id"],
            ask["run_id"],
            ask["tool"],
        )
        assert 200 == c.post(item["id"], "deny").status_code
        while True:
            name, data = next(events)
            if name == "feed" and any(r["action"] == "deny" for r in data):
                break
        assert ["refused: denied at the web console"] == work.result(30)
        c.stop()
        assert "closed" in [name for name, _ in events]


# -- the page, in Chromium ---------------------------------------------------------


def test_the_console_in_chromium(console):
    # CI sets CAPSCOPE_REQUIRE_CHROMIUM=1: there, a missing browser fails.
    required = os.environ.get("CAPSCOPE_REQUIRE_CHROMIUM") == "1"
    if not required:
        pytest.importorskip("playwright.sync_api")
        if not os.access(CHROMIUM, os.X_OK):
            pytest.skip(f"no Chromium at {CHROMIUM}")
    from playwright import sync_api

    expect = sync_api.expect
    c = console(timeout=120)
    workers = [f"w-{i:02d}" for i in range(20)]
    plan = {
        w: ("deny", "once", "always")[i % 3] for i, w in enumerate(workers)
    }
    run_of = {w: f"r-{i % 2 + 1}" for i, w in enumerate(workers)}
    env_of = {w: f"env-{w}" for w in workers}
    env_of["w-05"] = XSS
    outcomes: dict[str, list[str]] = {}
    done = threading.Event()

    async def agent(worker):
        overlay = RuntimeContextOverlay(
            run_id=run_of[worker], worker_id=worker
        )
        results = []
        with cs.using(overlay=overlay):
            for _ in range(2):  # a repeat of a granted call
                try:
                    results.append(
                        f"ran: {await deploy_async(env_of[worker])}"
                    )
                except cs.ApprovalDenied as exc:
                    results.append(f"refused: {exc}")
                    break
        outcomes[worker] = results

    async def twenty_workers():
        policy = ToolApprovalPolicy(handler=c.approver, timeout=None)
        with cs.using(execution=ROOT, approval=policy):
            await asyncio.gather(*(cs.spawn(agent(w)) for w in workers))

    def run_workers():
        try:
            asyncio.run(twenty_workers())
        finally:
            done.set()

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        try:
            # A stranger: the sign-in form, no data, refused by the API.
            stranger = browser.new_page()
            stranger.goto(c.url)
            expect(stranger.locator("#token")).to_be_visible()
            assert 401 == stranger.evaluate(
                "fetch('api/pending').then(r => r.status)"
            )
            stranger.close()

            context = browser.new_context(
                viewport={"width": 1440, "height": 1000}
            )
            page = context.new_page()
            dialogs = []
            page.on(
                "dialog", lambda d: (dialogs.append(d.message), d.dismiss())
            )
            page.goto(
                c.url + "#token=" + c.token
            )  # signs in, then the console
            expect(page.locator("#connection")).to_have_text("live")
            assert "#token" not in page.url

            threading.Thread(target=run_workers, daemon=True).start()
            pending(c, 20)
            cards = page.locator("li.card")
            expect(cards).to_have_count(20)
            expect(page.locator("#pending-count")).to_have_text("20")

            def check_cards():
                for worker in workers:
                    card = page.locator(f'li.card[data-worker="{worker}"]')
                    expect(card).to_have_count(1)
                    expect(card.locator(".chip.worker .v")).to_have_text(
                        worker
                    )
                    expect(card.locator(".chip.run .v")).to_have_text(
                        run_of[worker]
                    )
                    expect(
                        card.locator("table.args td pre").first
                    ).to_have_text(env_of[worker])
                    expect(card.locator(".tool")).to_have_text("deploy_async")

            check_cards()
            # The attacker's argument is text on the page; nothing ran.
            assert page.evaluate("window.__pwned") is None
            assert dialogs == []
            assert page.locator("li.card img").count() == 0

            # Pending requests survive a reload.
            page.reload()
            expect(page.locator("#connection")).to_have_text("live")
            expect(cards).to_have_count(20)
            check_cards()
            assert page.evaluate("window.__pwned") is None

            # Filters by run and worker.
            page.select_option("#run-filter", "r-1")
            expect(page.locator("li.card:visible")).to_have_count(10)
            page.select_option("#worker-filter", "w-04")
            expect(page.locator("li.card:visible")).to_have_count(1)
            page.select_option("#run-filter", "")
            page.select_option("#worker-filter", "")
            expect(page.locator("li.card:visible")).to_have_count(20)

            # Answer each worker's card with its planned click.
            answered_ids = {}
            for n, worker in enumerate(workers):
                card = page.locator(f'li.card[data-worker="{worker}"]')
                request_id = card.get_attribute("data-id")
                answered_ids[worker] = request_id
                card.locator(f"button.{plan[worker]}").click()
                # Answered, the card goes (a "once" worker's repeat then
                # asks again, with a card of its own).
                expect(
                    page.locator(f'li.card[data-id="{request_id}"]')
                ).to_have_count(0)
                if n == 4:  # w-05, the attacker's argument, on top
                    expect(
                        page.locator("#feed tr.action-granted")
                    ).not_to_have_count(0)
                    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(SCREENSHOT))

            # A second answer to an answered request is refused.
            csrf = page.locator('meta[name="csrf-token"]').get_attribute(
                "content"
            )
            status = page.evaluate(
                """([id, csrf]) => fetch('api/requests/' + id, {
                    method: 'POST',
                    headers: {'Content-Type': 'application/json', 'X-CSRF-Token': csrf},
                    body: JSON.stringify({answer: 'once'}),
                }).then(r => r.status)""",
                [answered_ids["w-00"], csrf],
            )
            assert 409 == status

            # "once" is not remembered: those workers' repeats ask again,
            # and only theirs; deny them from the page.
            once = [w for w in workers if plan[w] == "once"]
            c.approver.queue.wait_pending(len(once), timeout=30)
            expect(cards).to_have_count(len(once))
            shown = sorted(
                cards.nth(i).get_attribute("data-worker")
                for i in range(len(once))
            )
            assert shown == once
            for worker in once:
                card = page.locator(f'li.card[data-worker="{worker}"]')
                card.locator("button.deny").click()
                expect(card).to_have_count(0)
            assert done.wait(30)
        finally:
            browser.close()

    ran = "ran: deployed to "
    for worker in workers:
        env = env_of[worker]
        expected = {
            "deny": ["refused: denied at the web console"],
            "once": [ran + env, "refused: denied at the web console"],
            "always": [ran + env, ran + env],
        }[plan[worker]]
        assert expected == outcomes[worker], worker
    assert SCREENSHOT.stat().st_size > 10_000
