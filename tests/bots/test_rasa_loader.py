"""Reading a Rasa 3.x project (bots/dialogue/rasa.py, rasa_domain.py, rasa_rules.py) on small YAML
files: what each rule shape becomes, what is reported as ignored, and mistakes named with their file.
The projects run end to end in tests/bots/test_rasa_project.py."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from seamline.bots.dialogue import Condition, RuleStep
from seamline.bots.dialogue.rasa import describe, load_rasa, run_settings, understand
from seamline.shared.errors import ConfigError

DOMAIN = """
version: "3.1"
intents: [greet, goodbye, book, stop, vip_hello, chitchat]
entities: [city]
slots:
  city:
    type: categorical
    values: [Paris, Rome]
    mappings:
    - type: from_entity
      entity: city
      conditions:
      - active_loop: trip_form
        requested_slot: city
      - active_loop: other_form
  vip:
    type: bool
    initial_value: false
    mappings:
    - type: custom
forms:
  trip_form:
    required_slots: [city, nights]
responses:
  utter_greet:
  - text: Hi!
  - text: Hi, {name}!
    channel: telegram
  utter_bye:
  - text: Bye!
  utter_ask_city:
  - text: Which city?
  utter_ask_nights:
  - text: How many nights?
  utter_done:
  - text: Booked.
  utter_vip:
  - text: Welcome back!
    image: https://example.org/vip.png
actions: [action_book, validate_trip_form, utter_greet]
"""

NLU = """
version: "3.1"
nlu:
- intent: greet
  examples: |
    - hello
    - hi
- intent: goodbye
  examples: |
    - bye
- intent: book
  examples: |
    - book a trip to [Paris](city)
"""


def project(tmp_path: Path, rules: str = "", *, domain: str = DOMAIN, files: dict[str, str] | None = None) -> Path:
    (tmp_path / "data").mkdir(parents=True, exist_ok=True)
    (tmp_path / "domain.yml").write_text(textwrap.dedent(domain), encoding="utf-8")
    (tmp_path / "data" / "nlu.yml").write_text(textwrap.dedent(NLU), encoding="utf-8")
    if rules:
        (tmp_path / "data" / "rules.yml").write_text(textwrap.dedent(rules), encoding="utf-8")
    for name, text in (files or {}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return tmp_path


def rules_of(tmp_path: Path, rules: str) -> dict:
    return {rule.name: rule for rule in load_rasa(project(tmp_path, rules), {}).domain.rules}


def test_intent_rules_with_or_conditions_and_slots_set_by_the_message(tmp_path):
    rules = rules_of(
        tmp_path,
        """
        rules:
        - rule: greet
          steps:
          - or:
            - intent: greet
            - intent: vip_hello
          - action: utter_greet
          - action: action_listen
        - rule: vip
          condition:
          - slot_was_set:
            - vip: true
          - active_loop: null
          steps:
          - intent: greet
          - slot_was_set:
            - city
          - action: utter_vip
        """,
    )
    assert [r.intent for r in load_rasa(tmp_path, {}).domain.rules] == ["greet", "vip_hello", "greet"]
    assert rules["greet"].then == (RuleStep("response", "utter_greet"),)  # the final listen is implied
    assert rules["vip"].when == Condition(slots={"vip": True, "city": "*"}, active_form="")


def test_form_activation_submission_and_an_interruption_that_returns_to_the_form(tmp_path):
    domain = load_rasa(
        project(
            tmp_path,
            """
            rules:
            - rule: start
              steps:
              - intent: book
              - action: trip_form
              - active_loop: trip_form
            - rule: submit
              condition:
              - active_loop: trip_form
              steps:
              - action: trip_form
              - active_loop: null
              - slot_was_set:
                - requested_slot: null
              - action: action_book
              - action: utter_done
            - rule: chitchat in the form
              condition:
              - active_loop: trip_form
              steps:
              - intent: chitchat
              - action: utter_greet
              - action: trip_form
              - active_loop: trip_form
            - rule: stop in the form
              condition:
              - active_loop: trip_form
              steps:
              - intent: stop
              - action: utter_bye
            """,
        ),
        {},
    ).domain
    start, submit, chitchat, stop = domain.rules
    assert stop.then == (RuleStep("response", "utter_bye"), RuleStep("listen"))  # no question after it
    assert start.intent == "book" and start.then == (RuleStep("form", "trip_form"),)
    assert submit.intent is None and submit.after_form == "trip_form"
    assert submit.then == (RuleStep("action", "action_book"), RuleStep("response", "utter_done"))
    assert chitchat.when.active_form == "trip_form" and chitchat.then == (RuleStep("response", "utter_greet"),)
    form = domain.forms["trip_form"]
    assert form.required_slots == ("city", "nights") and form.validate_action == "validate_trip_form"
    assert domain.slots["nights"].type == "text"  # required but not declared: asked for, it takes the text
    assert domain.actions == ("action_book", "validate_trip_form")


def test_wait_for_user_input_false_runs_the_rule_that_follows_its_last_action(tmp_path):
    rules = rules_of(
        tmp_path,
        """
        rules:
        - rule: greet then ask
          wait_for_user_input: false
          steps:
          - intent: greet
          - action: utter_greet
        - rule: after the greeting
          steps:
          - action: utter_greet
          - action: utter_ask_city
        - rule: never reached
          steps:
          - action: action_book
          - action: utter_done
        - rule: first message
          conversation_start: true
          steps:
          - intent: greet
          - action: utter_vip
        """,
    )
    assert rules["greet then ask"].then == (RuleStep("response", "utter_greet"), RuleStep("response", "utter_ask_city"))
    assert rules["greet then ask"].wait_for_user_input is True
    assert "after the greeting" not in rules  # a continuation, not a rule of its own
    assert rules["first message"].conversation_start and rules["first message"].intent == "greet"
    assert rules["first message"].then == (RuleStep("response", "utter_vip"), RuleStep("listen"))
    assert "rule 'never reached' (it follows action_book" in describe(load_rasa(tmp_path, {}))[1]


def test_stories_policies_and_unsupported_parts_are_counted_and_listed_once(tmp_path):
    root = project(
        tmp_path,
        """
        rules:
        - rule: restart
          steps:
          - intent: stop
          - action: action_restart
          - action: action_two_stage_fallback
          - action: utter_bye
        """,
        files={
            "data/stories/one.yml": "stories:\n- story: a\n  steps: [{intent: greet}]\n- story: b\n  steps: []\n",
            "data/stories/two.yml": "stories:\n- story: c\n  steps: []\n",
            "config.yml": "language: en\npipeline: [{name: DIETClassifier}]\npolicies: [{name: TEDPolicy}]\n",
            "endpoints.yml": "tracker_store: {type: redis}\n",
            "credentials.yml": "rest:\ntelegram: {access_token: x}\n",
        },
    )
    loaded = load_rasa(root, {})
    lines = describe(loaded)
    assert len(lines) == 2 and lines[1].startswith("Ignored: 3 stories (stories need ML policies), config.yml")
    for part in ("action_two_stage_fallback", "tracker_store", "credentials.yml telegram", "entities marked"):
        assert part in lines[1], lines[1]
    # Rasa's default actions run as Rasa's do (bots/dialogue/actions.py); they are not custom ones
    assert loaded.domain.rules[0].then == (RuleStep("action", "action_restart"), RuleStep("response", "utter_bye"))
    assert "action_restart" not in loaded.domain.actions and "action_restart" not in lines[1]
    assert "13 responses" not in lines[0] and "6 responses" in lines[0]


def test_slots_mappings_responses_and_the_framework_texts(tmp_path):
    domain = load_rasa(project(tmp_path), {}).domain
    city = domain.slots["city"]
    assert city.values == ("Paris", "Rome") and [m.active_form for m in city.mappings] == ["trip_form", "other_form"]
    assert city.mappings[0].requested_slot == "city" and city.mappings[1].requested_slot is None
    assert domain.slots["vip"].mappings[0].type == "from_action" and domain.slots["vip"].initial is False
    assert not domain.answer_by_intent_name
    responses = domain.responses
    assert responses.render("utter_greet", "en", {}, channel="telegram", profile={"name": "Ada"}).text == "Hi, Ada!"
    assert responses.render("utter_vip", "en", {}).image == "https://example.org/vip.png"
    assert responses.has("fallback", "en") and responses.has("action_failed", "en")  # the framework's own


@pytest.mark.parametrize(
    ("domain", "problem"),
    [
        ("slots: {x: {type: texty}}\n", "slot 'x' has type 'texty'"),
        ("responses: {utter_x: hello}\n", "response 'utter_x' is not a list of variants"),
        ("intents: [a\n", "is not valid YAML"),
        ("forms: {f: {required_slots: []}}\n", "form 'f' has no required_slots"),
    ],
)
def test_a_broken_domain_names_the_file_and_the_problem(tmp_path, domain, problem):
    with pytest.raises(ConfigError) as caught:
        load_rasa(project(tmp_path, domain=domain), {})
    assert caught.value.setting == str(tmp_path / "domain.yml") and problem in str(caught.value)


def test_a_rule_saying_a_response_the_domain_lacks_names_the_rule(tmp_path):
    with pytest.raises(ConfigError, match=r"rule 'oops'.*says 'utter_missing'"):
        rules_of(tmp_path, "rules:\n- rule: oops\n  steps: [{intent: greet}, {action: utter_missing}]\n")
    with pytest.raises(ConfigError, match=r"rule 'f'.*starts form 'nope_form', which domain.yml's forms lack"):
        rules_of(
            tmp_path, "rules:\n- rule: f\n  steps: [{intent: book}, {action: nope_form}, {active_loop: nope_form}]\n"
        )
    with pytest.raises(ConfigError, match=r"rule 'c'.*active_loop: nope_form, not a form"):
        rules_of(tmp_path, "rules:\n- rule: c\n  condition: [{active_loop: nope_form}]\n  steps: [{intent: book}]\n")


def test_endpoints_and_credentials_make_the_settings(tmp_path):
    root = project(
        tmp_path,
        files={
            "endpoints.yml": "action_endpoint:\n  url: http://${ACTIONS_HOST}:5055/webhook\n",
            "credentials.yml": "rest:\n",
            "config.yml": "language: ru\n",
        },
    )
    settings, loaded = run_settings(root, {"ACTIONS_HOST": "127.0.0.1"})
    assert settings.action_endpoint == "http://127.0.0.1:5055/webhook" and settings.actions_module == ""
    assert settings.rasa_project == root.resolve() and settings.data_dir == root.resolve() / ".seamline"
    assert settings.port == 5005 and settings.default_language == "ru"
    assert settings.channels["rest"] == {"allow_anonymous": True}  # listening on 127.0.0.1 only
    assert loaded.domain.responses.has("fallback", "ru")
    lines = describe(loaded, settings)
    assert "Custom actions: http://127.0.0.1:5055/webhook." in lines
    assert "REST channel: POST http://127.0.0.1:5005/webhooks/rest/webhook (no token: from this machine only)." in lines
    said = loaded.domain.responses.render("fallback", "en", {}).text  # the bot speaks Russian to everyone
    assert said == loaded.domain.responses.render("fallback", "ru", {}).text and "не" in said.lower()
    own, _ = run_settings(root, {"SEAMLINE_ACTION_ENDPOINT": "http://a.example/webhook", "SEAMLINE_PORT": "9000"})
    assert own.action_endpoint == "http://a.example/webhook" and own.port == 9000
    token, _ = run_settings(root, {"SEAMLINE_REST_TOKEN": "t" * 20, "ACTIONS_HOST": "h"})
    assert "allow_anonymous" not in token.channels["rest"]
    with pytest.raises(ConfigError, match=r"listens on 0\.0\.0\.0, beyond this machine, without a token"):
        run_settings(root, {"SEAMLINE_HOST": "0.0.0.0", "ACTIONS_HOST": "h"})
    with pytest.raises(ConfigError, match=r"uses \$\{ACTIONS_HOST\}, which is not set"):
        run_settings(root, {})
    (root / "endpoints.yml").write_text("action_endpoint:\n  url: localhost:5055\n")
    with pytest.raises(ConfigError, match=r"endpoints\.yml: action_endpoint url: 'localhost:5055' is not an http"):
        run_settings(root, {})


def test_without_an_action_server_the_projects_actions_run_in_process(tmp_path):
    settings, _ = run_settings(project(tmp_path), {})
    assert settings.action_endpoint == "" and settings.project_dir == tmp_path.resolve()
    assert settings.actions_module == "actions" and "rest" not in settings.channels  # no credentials.yml


def test_a_rule_for_nlu_fallback_is_what_is_said_when_a_message_is_not_understood(tmp_path):
    loaded = load_rasa(
        project(
            tmp_path,
            """
            rules:
            - rule: rephrase
              steps:
              - intent: nlu_fallback
              - action: utter_bye
            - rule: out of scope
              steps:
              - intent: out_of_scope
              - action: utter_greet
              - action: utter_bye
            """,
        ),
        {},
    )
    assert loaded.domain.rules == ()
    assert loaded.domain.responses.render("utter_default", "en", {}).text == "Bye!"
    assert "rule 'out of scope' (not understood: Seamline says one response, utter_bye)" in loaded.ignored


def test_the_model_is_trained_once_for_the_same_data_and_again_when_it_changes(tmp_path):
    root = project(tmp_path / "bot")
    settings, loaded = run_settings(root, {})
    first = understand(loaded, settings)
    assert first.parse("hello").intent == "greet"
    understand(load_rasa(root, {}), settings)  # the next start: the same data, the same model
    assert len(list(settings.models_dir.glob("nlu-*.npz"))) == 1
    nlu = root / "data" / "nlu.yml"
    nlu.write_text(nlu.read_text() + "- intent: thanks\n  examples: |\n    - thank you\n    - thanks\n")
    assert understand(load_rasa(root, {}), settings).parse("thank you").intent == "thanks"
    assert len(list(settings.models_dir.glob("nlu-*.npz"))) == 2


def test_a_domain_folder_and_nested_data_folders_are_read_whole(tmp_path):
    root = tmp_path / "bot"
    files = {
        "domain/intents.yml": "intents: [greet, bye]\n",
        "domain/answers/responses.yml": "responses:\n  utter_greet: [{text: Hi}]\n  utter_bye: [{text: Bye}]\n",
        "data/nlu/greet.yml": "nlu:\n- intent: greet\n  examples: |\n    - hello\n    - hi\n",
        "data/nlu/bye.yml": "nlu:\n- intent: bye\n  examples: |\n    - bye\n",
        "data/rules/all.yml": "rules:\n- rule: r\n  steps: [{intent: bye}, {action: utter_bye}]\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    loaded = load_rasa(root, {})
    assert loaded.domain.intents == ("greet", "bye") and loaded.domain.responses.has("utter_bye", "en")
    assert sorted({e.intent for e in loaded.nlu.examples}) == ["bye", "greet"]
    assert [r.name for r in loaded.domain.rules] == ["r"]


# -- what the translated rules do in the engine (bots/dialogue/engine.py), one decided turn at a time --


async def test_translated_rules_behave_in_the_engine_as_in_rasa(tmp_path):
    from seamline.bots.dialogue import Dialogue
    from seamline.nlu.parse import OUT_OF_SCOPE, Parse
    from seamline.shared.message import Message
    from seamline.shared.session import Session

    loaded = load_rasa(
        project(
            tmp_path,
            """
            rules:
            - rule: welcome
              conversation_start: true
              steps:
              - intent: greet
              - action: utter_vip
            - rule: greet then ask
              wait_for_user_input: false
              steps:
              - intent: greet
              - action: utter_greet
            - rule: after the greeting
              steps:
              - action: utter_greet
              - action: utter_ask_city
            - rule: start
              steps:
              - intent: book
              - action: trip_form
              - active_loop: trip_form
            - rule: chitchat in the form
              condition:
              - active_loop: trip_form
              steps:
              - intent: chitchat
              - action: utter_bye
            - rule: rephrase
              steps:
              - intent: nlu_fallback
              - action: utter_done
            - rule: leaving the form
              condition:
              - active_loop: trip_form
              steps:
              - intent: goodbye
              - action: action_deactivate_loop
              - active_loop: null
              - action: utter_bye
            """,
        ),
        {},
    )
    dialogue = Dialogue(domain=loaded.domain)
    session = Session(customer_id="c", conversation_id="v")

    async def said(intent: str, text: str = "x") -> list[str]:
        message = Message(channel="rest", address="a", sender="a", text=text)
        decision = await dialogue.decide(Parse(intent, 1.0), session, message=message)
        return [reply.text for reply in decision.replies]

    assert await said("greet") == ["Welcome back!"]  # the first message: the conversation_start rule only
    assert await said(OUT_OF_SCOPE) == ["Booked."]  # the nlu_fallback rule's response
    assert await said("book") == ["Which city?"] and session.active_form == "trip_form"
    assert await said("chitchat") == ["Bye!"]  # the rule does not go back to the form: no question
    assert session.active_form == "trip_form"
    assert await said("goodbye") == ["Bye!"] and session.active_form is None  # Rasa's action_deactivate_loop


@pytest.mark.xfail(
    strict=False,
    reason="engine: bots/dialogue/rules.py matching() also runs conversation_start rules after the first "
    "message (it should skip rule.conversation_start); rules.py is part A's",
)
async def test_a_conversation_start_rule_does_not_answer_later_messages(tmp_path):
    from seamline.bots.dialogue import Dialogue
    from seamline.nlu.parse import Parse
    from seamline.shared.message import Message
    from seamline.shared.session import Session

    rules = """
    rules:
    - rule: welcome
      conversation_start: true
      steps: [{intent: greet}, {action: utter_vip}]
    - rule: greet
      steps: [{intent: greet}, {action: utter_greet}]
    """
    dialogue = Dialogue(domain=load_rasa(project(tmp_path, rules), {}).domain)
    session = Session(customer_id="c", conversation_id="v")
    message = Message(channel="rest", address="a", sender="a", text="hi")
    first = await dialogue.decide(Parse("greet", 1.0), session, message=message)
    later = await dialogue.decide(Parse("greet", 1.0), session, message=message)
    assert [r.text for r in first.replies] == ["Welcome back!"]
    assert [r.text for r in later.replies] == ["Hi!"]
