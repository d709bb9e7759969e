"""The review and adjudication tasks as a person sees them: Debian's Chromium, driven by
selenium, logs in to the session's real Label Studio and opens a review task and an
adjudication task. Screenshots are saved under the test's tmp_path (their paths are printed).

Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them); skipped otherwise."""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from corpus.adjudication import adjudicate
from review.adjudication import AdjudicationItem
from review.client import LabelStudioClient
from review.config import EVIDENCE_LABEL, instructions_html, label_config
from review.results import sentence_spans
from schemas.records import (
    AdjudicationInput,
    AnnotatedDocument,
    DocumentMetadata,
    Entity,
    Evidence,
    HumanAnnotation,
    SpanLabel,
    Stance,
    StanceLabel,
)

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
_MISSING = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
_T = TypeVar("_T")

TITLE = "EU leaders split over new sanctions"
TEXT = (
    f"{TITLE}\n\n"
    "1. Brussels defended the new sanctions package on Monday. "
    "Ursula von der Leyen said the European Union would not back down.\n"
    # enough text between the two stances that the second one is only seen after scrolling
    + "".join(
        f"{k}. Background paragraph {k} goes over the earlier rounds of talks, the figures "
        "on trade and energy, and what officials said in private about the timetable.\n"
        for k in range(2, 30)
    )
    + "30. Critics in Budapest attacked the plan. Viktor Orbán called the measures "
    "a mistake that would hurt Hungary more than Russia.\n"
    "31. The package is due to be voted on in March, when ministers meet again in Brussels."
)


def _at(name: str, nth: int = 0) -> tuple[int, int]:
    start = -1
    for _ in range(nth + 1):
        start = TEXT.index(name, start + 1)
    return start, start + len(name)


def _entity(name: str, label: str, score: float, nth: int = 0) -> Entity:
    start, end = _at(name, nth)
    return Entity(start=start, end=end, label=label, text=name, score=score)


def _at_sentence(containing: str) -> tuple[int, int]:
    ev = _sentence(containing)
    return ev.start, ev.end


def _sentence(containing: str) -> Evidence:
    where = TEXT.index(containing)
    s, e = next((s, e) for s, e in sentence_spans(TEXT) if s <= where < e)
    return Evidence(start=s, end=e)


def article() -> AnnotatedDocument:
    entities = [
        _entity("Brussels", "GPE", 0.9),
        _entity("Ursula von der Leyen", "PERSON", 0.95),
        _entity("European Union", "ORG", 0.8),
        _entity("Budapest", "GPE", 0.85),
        _entity("Viktor Orbán", "PERSON", 0.9),
        _entity("Hungary", "GPE", 0.7),
        _entity("Russia", "GPE", 0.75),
        _entity("March", "DATE", 0.6),
    ]
    stances = [
        # the model's evidence for this one is the title plus the list number "1."
        Stance(
            target="European Union",
            label="FAVOR",
            score=0.55,
            evidence=[Evidence(start=0, end=len(TITLE) + 4), _sentence("would not back down")],
        ),
        Stance(target="Viktor Orbán", label="AGAINST", score=0.65, evidence=[_sentence("mistake")]),
    ]
    return AnnotatedDocument(
        source="corpus/samples/eu-sanctions.txt",
        doc_id=f"eu-sanctions-{uuid.uuid4().hex[:6]}",
        text=TEXT,
        metadata=DocumentMetadata(
            title=TITLE, source_url="https://news.example.org/eu-sanctions", authors=["A. Writer"]
        ),
        content_hash="hash-eu-sanctions",
        entities=entities,
        stances=stances,
        model_version="m-browser",
    )


# ---------------------------------------------------------------- the browser


@pytest.fixture
def browser(label_studio: Any, tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium, logged in to the session's Label Studio as its admin."""
    if _MISSING:
        pytest.skip(
            f"{', '.join(_MISSING)} missing: install Debian's browser with "
            "`apt-get update && apt-get install -y chromium chromium-driver`"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1600,1100",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    try:
        driver.get(f"{label_studio.url}/user/login/")
        driver.find_element(By.NAME, "email").send_keys(label_studio.username)
        driver.find_element(By.NAME, "password").send_keys(label_studio.password)
        driver.find_element(By.CSS_SELECTOR, "button[type=submit], input[type=submit]").click()
        _wait(lambda: "/user/login" not in driver.current_url or None, "login")
        yield driver
    finally:
        driver.quit()


def _wait(probe: Callable[[], _T | None], what: str, limit: float = 90) -> _T:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            found = probe()
        except Exception:  # noqa: BLE001 - the page is still rendering; probe again
            found = None
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _open_task(driver: Any, url: str, project: int, task: int) -> list[Any]:
    """Open a task in the Data Manager's labeling view; returns its highlighted regions."""
    from selenium.webdriver.common.by import By

    driver.get(f"{url}/projects/{project}/data?task={task}")
    _wait(lambda: driver.find_elements(By.CSS_SELECTOR, ".lsf-richtext"), "the labeling view")
    return _wait(
        lambda: driver.find_elements(By.CSS_SELECTOR, "span.htx-highlight"), "the highlights"
    )


def _shot(driver: Any, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


def _regions(highlights: list[Any]) -> dict[str, list[str]]:
    """Label -> the texts of its highlighted regions, white space removed. Overlapping regions
    are drawn as nested spans, so a region's text is that of every span carrying its region id
    (class htx-highlight-<id>-<n>), in page order; its label is on its last span."""
    texts: dict[str, list[str]] = {}
    labels: dict[str, str] = {}
    for span in highlights:
        (rid,) = re.findall(r"htx-highlight-([0-9a-z]+)-\d+", span.get_attribute("class") or "")
        texts.setdefault(rid, []).append(span.text)
        label = span.get_attribute("data-label")  # on a region's last span only
        if label:
            labels[rid] = label.split(":", 1)[-1]
    found: dict[str, list[str]] = {}
    for rid, parts in texts.items():
        found.setdefault(labels.get(rid, ""), []).append(_squeezed("".join(parts)))
    return found


def _squeezed(text: str) -> str:
    return "".join(text.split())


def _article_text(driver: Any) -> Any:
    """The Text object holding the article (the byline and the disputes are rich text too)."""
    from selenium.webdriver.common.by import By

    texts = driver.find_elements(By.CSS_SELECTOR, ".lsf-richtext")
    return next(t for t in texts if t.find_elements(By.CSS_SELECTOR, "span.htx-highlight"))


def _visible_text(driver: Any) -> str:
    """What the labeling view shows (not the task list beside it)."""
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.CSS_SELECTOR, ".lsf-main-view").text)


def _headings(driver: Any, title: str) -> list[Any]:
    """The displayed headings that read `title`."""
    from selenium.webdriver.common.by import By

    xpath = f"//*[self::h1 or self::h2 or self::h3 or self::h4][normalize-space()='{title}']"
    return [h for h in driver.find_elements(By.XPATH, xpath) if h.is_displayed()]


def _no_raw_data(page: str, doc: AnnotatedDocument) -> None:
    for raw in ('"doc_id"', '"content_hash"', '{"text"', doc.content_hash, '"predictions"'):
        assert raw not in page, f"raw task data on the page: {raw}"


# ---------------------------------------------------------------- the tests


def test_review_browser_annotator_sees_article_labels_and_stance_beside_evidence(
    ls_client: LabelStudioClient, label_studio: Any, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    doc = article()
    project = ls_client.ensure_project(
        f"browser-{uuid.uuid4().hex[:6]}", label_config(), instructions_html(), overlap=2
    )
    (task,) = ls_client.push(project, [doc]).task_ids.values()
    highlights = _open_task(browser, label_studio.url, project, task)
    _shot(browser, tmp_path, "review-task")

    # the article first: the source line, then the text, near the top; the text opens with
    # the title, so the title is read once, there, and not again as a heading above it
    text = _article_text(browser)
    (link,) = [a for a in browser.find_elements(By.CSS_SELECTOR, ".cf-meta a") if a.is_displayed()]
    assert link.get_attribute("href") == doc.metadata.source_url
    print("source link, text at y =", link.rect, text.rect)
    assert link.rect["y"] < text.rect["y"] < 700
    assert text.text.lstrip().startswith(TITLE)
    assert "Brussels defended the new sanctions package" in text.text
    page = _visible_text(browser)
    assert page.count(TITLE) == 1, page[:400]
    assert not _headings(browser, TITLE)
    _no_raw_data(page, doc)
    assert "Critics in Budapest attacked the plan." in text.text

    # entity labels are written on the spans, evidence spans are sentences of the text
    regions = _regions(highlights)
    assert _squeezed("Viktor Orbán") in regions["PERSON"] and "March" in regions["DATE"]
    entity_spans = [h for h in highlights if ":PERSON" in (h.get_attribute("data-label") or "")]
    assert entity_spans and all(
        "htx-no-label" not in (h.get_attribute("class") or "") for h in entity_spans
    )
    sentences = {_squeezed(TEXT[s:e]) for s, e in sentence_spans(TEXT)}
    evidence_texts = regions[EVIDENCE_LABEL]
    assert len(evidence_texts) == 3  # EU: two sentences, Orbán: one; none is the title
    assert set(evidence_texts) <= sentences and _squeezed(TITLE) not in evidence_texts

    # nothing is decided for a region before one is selected ...
    side = browser.find_element(By.CSS_SELECTOR, ".cf-side")

    def stance_choices() -> list[Any]:
        return [
            label
            for label in side.find_elements(By.TAG_NAME, "label")
            if label.is_displayed() and label.text.split("[")[0] in ("FAVOR", "AGAINST", "NEUTRAL")
        ]

    assert not stance_choices() and "Viktor Orbán" not in side.text
    # ... selecting the Orbán evidence sentence shows its target and stance beside it
    orban = next(h for h in highlights if "called the measures a mistake" in h.text)
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", orban)
    orban.click()
    choices = _wait(stance_choices, "the stance choices of the selected region")
    _shot(browser, tmp_path, "review-region-selected")
    picked = [
        c.text.split("[")[0]
        for c in choices
        if c.find_element(By.CSS_SELECTOR, "input[type=radio]").is_selected()
    ]
    assert picked == ["AGAINST"]
    targets = [
        t.get_attribute("value") or t.text
        for t in side.find_elements(By.CSS_SELECTOR, "input[type=text], textarea, .lsf-text-area")
    ]
    assert any("Viktor Orbán" in (t or "") for t in targets) or "Viktor Orbán" in side.text
    # beside the text, and on screen together with the selected sentence far down the article
    assert browser.execute_script("return arguments[0].getBoundingClientRect().top", text) < 0
    assert side.location["x"] > text.location["x"] + text.size["width"] / 2
    viewport = browser.execute_script("return window.innerHeight")
    for element in (orban, choices[0]):
        top = browser.execute_script("return arguments[0].getBoundingClientRect().top", element)
        assert 0 <= top < viewport


def test_review_browser_adjudicator_sees_disputes_side_by_side_and_an_undecided_draft(
    ls_client: LabelStudioClient, label_studio: Any, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    doc = article()
    orban, budapest, march = _at("Viktor Orbán"), _at("Budapest"), _at("March")
    agreed = [
        SpanLabel(start=s, end=e, label=lbl) for (s, e), lbl in ((budapest, "GPE"), (march, "DATE"))
    ]
    eu = StanceLabel(target="European Union", label="FAVOR", evidence=(_sentence("back down"),))
    hu = _sentence("mistake")
    one = HumanAnnotation(
        annotator="ann-one@corpusflow.test",
        entities=[*agreed, SpanLabel(start=orban[0], end=orban[1], label="PERSON")],
        stances=[eu, StanceLabel(target="Viktor Orbán", label="AGAINST", evidence=(hu,))],
    )
    two = HumanAnnotation(
        annotator="ann-two@corpusflow.test",
        entities=[*agreed, SpanLabel(start=orban[0], end=orban[1], label="NORP")],
        stances=[eu, StanceLabel(target="Viktor Orbán", label="NEUTRAL", evidence=(hu,))],
    )
    decision = adjudicate(AdjudicationInput(doc_id=doc.doc_id, annotations=[one, two]))
    assert decision.status == "disputed" and len(decision.disputes) == 2
    adj = ls_client.ensure_adjudication_project(f"browser-{uuid.uuid4().hex[:6]}")
    (task,) = ls_client.push_adjudication(
        adj, [AdjudicationItem(doc, [one, two], decision)]
    ).task_ids.values()
    highlights = _open_task(browser, label_studio.url, adj, task)
    table = _wait(lambda: browser.find_element(By.CSS_SELECTOR, ".cf-disputes table"), "disputes")
    _shot(browser, tmp_path, "adjudication-task")

    # the disputes come first, each with both versions, under pseudonyms
    text = _article_text(browser)
    assert table.location["y"] < text.location["y"]
    headers = [th.text for th in table.find_elements(By.TAG_NAME, "th")]
    assert headers == ["#", "Item", "annotator-1 said", "annotator-2 said"]
    rows = [
        [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
        for tr in table.find_elements(By.CSS_SELECTOR, "tbody tr")
    ]
    assert len(rows) == 2
    entity_row = next(r for r in rows if "Viktor Orbán" in r[1] and r[1].startswith("Entity"))
    assert entity_row[2:] == ["PERSON", "NORP"]
    stance_row = next(r for r in rows if r[1].startswith("Stance"))
    assert stance_row[2].startswith("AGAINST") and stance_row[3].startswith("NEUTRAL")
    page = _visible_text(browser)
    assert "corpusflow.test" not in page  # no emails
    assert "How to adjudicate" in page and "How to review" not in page
    _no_raw_data(page, doc)

    # the draft holds what both agreed on and no disputed item
    regions = _regions(highlights)
    assert regions.get("GPE") == ["Budapest"] and regions.get("DATE") == ["March"]
    assert "PERSON" not in regions and "NORP" not in regions  # Orbán's label is disputed
    evidence = regions.get(EVIDENCE_LABEL, [])
    assert evidence == [_squeezed(TEXT[slice(*_at_sentence("back down"))])]  # agreed EU only
    side = browser.find_element(By.CSS_SELECTOR, ".cf-side")
    assert side.is_displayed()
    (draft,) = ls_client._predictions_by_task(adj)[task]
    assert json.dumps(draft["result"]).count("Viktor") == 0


def test_review_browser_task_list_puts_least_certain_first(
    ls_client: LabelStudioClient, label_studio: Any, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    project = ls_client.ensure_project(
        f"browser-order-{uuid.uuid4().hex[:6]}", label_config(), instructions_html()
    )
    docs = []
    for n, score in enumerate((0.9, 0.3, 0.6)):
        doc = article().model_copy(update={"doc_id": f"order-{n}"})
        doc.entities = [e.model_copy(update={"score": score}) for e in doc.entities]
        doc.stances = [s.model_copy(update={"score": score}) for s in doc.stances]
        docs.append(doc)
    ids = ls_client.push(project, docs).task_ids
    tab = ls_client.ensure_uncertain_first_tab(project)
    browser.get(f"{label_studio.url}/projects/{project}/data?tab={tab}")

    def listed() -> list[int] | None:
        cells = browser.find_elements(
            By.CSS_SELECTOR, ".dm-table__row-wrapper, .lsf-table__row-wrapper, [class*=row-wrapper]"
        )
        found = [int(m.group()) for c in cells if (m := re.search(r"\b\d+\b", c.text))]
        return found if len(found) == 3 else None

    order = _wait(listed, "the task list")
    _shot(browser, tmp_path, "task-list-least-certain-first")
    assert order == [ids["order-1"], ids["order-2"], ids["order-0"]]


def test_review_browser_title_shown_above_a_text_that_does_not_open_with_it(
    ls_client: LabelStudioClient, label_studio: Any, browser: Any, tmp_path: Path
) -> None:
    """A text without its title (the title came from the page's metadata, not its body) gets
    the title as a heading over the source line; a task pushed before the heading field
    existed (its data without `heading`) shows no heading and no `$heading`."""
    from selenium.webdriver.common.by import By

    project = ls_client.ensure_project(
        f"browser-heading-{uuid.uuid4().hex[:6]}", label_config(), instructions_html()
    )
    body = TEXT[len(TITLE) :].lstrip()
    doc = article().model_copy(update={"text": body, "entities": [], "stances": []})
    doc.metadata = doc.metadata.model_copy(update={"title": "Brussels holds its line"})
    (task,) = ls_client.push(project, [doc]).task_ids.values()
    _open_task_text(browser, label_studio.url, project, task)
    title = _wait(lambda: _headings(browser, "Brussels holds its line"), "the title")[0]
    text = _article_text_any(browser)
    (link,) = [a for a in browser.find_elements(By.CSS_SELECTOR, ".cf-meta a") if a.is_displayed()]
    _shot(browser, tmp_path, "review-task-heading")
    print("title, source link, text at y =", title.rect, link.rect, text.rect)
    assert title.rect["y"] + title.rect["height"] <= link.rect["y"] < text.rect["y"] < 700
    assert _visible_text(browser).count("Brussels holds its line") == 1

    old = {k: v for k, v in ls_client.sdk.tasks.get(str(task)).data.items() if k != "heading"}
    old["doc_id"] = "pushed-before-headings"
    created = ls_client.sdk.tasks.create(project=project, data=old)
    assert created.id is not None
    _open_task_text(browser, label_studio.url, project, int(created.id))
    _wait(lambda: "Brussels defended" in _article_text_any(browser).text, "the old task's text")
    _shot(browser, tmp_path, "review-task-without-heading-field")
    page = _visible_text(browser)
    assert "$heading" not in page and "undefined" not in page
    assert not _headings(browser, "Brussels holds its line")


def _open_task_text(driver: Any, url: str, project: int, task: int) -> None:
    """Open a task (with or without regions) in the Data Manager's labeling view."""
    from selenium.webdriver.common.by import By

    driver.get(f"{url}/projects/{project}/data?task={task}")
    _wait(lambda: driver.find_elements(By.CSS_SELECTOR, ".lsf-richtext"), "the labeling view")


def _article_text_any(driver: Any) -> Any:
    """The Text object holding the article, found by its text (it may have no regions)."""
    from selenium.webdriver.common.by import By

    texts = driver.find_elements(By.CSS_SELECTOR, ".lsf-richtext")
    return next(t for t in texts if "Background paragraph" in t.text)
