"""Redaction of credential values in text, URLs and headers (§3.1.1, §8.4 "Secrets")."""

from __future__ import annotations

import json

from reqon.http.secrets import Secrets


def test_every_occurrence_is_masked_longest_first() -> None:
    secrets = Secrets(["abcd", "abcdefgh"])
    assert secrets.redact("x abcdefgh y abcd z") == "x *** y *** z"


def test_short_and_empty_values_are_not_searched_in_text() -> None:
    secrets = Secrets(["abc", ""])
    assert secrets.redact("abc is kept") == "abc is kept"
    assert "abc" not in secrets


def test_encoded_forms_are_masked_too() -> None:
    value = 'p@ss w/"quote"'
    secrets = Secrets([value])
    assert secrets.redact("url: p%40ss%20w%2F%22quote%22") == "url: ***"
    assert secrets.redact("form: p%40ss+w%2F%22quote%22") == "form: ***"
    assert secrets.redact("json: " + json.dumps({"pw": value})) == 'json: {"pw": "***"}'


def test_text_without_secrets_is_returned_unchanged() -> None:
    text = "nothing to hide"
    assert Secrets().redact(text) is text


def test_urls_mask_api_key_parameters_and_userinfo() -> None:
    secrets = Secrets()
    secrets.add_query_name("apikey")
    url = "https://bob:hunter2@h.example/p?apikey=1&ApiKey=2&access_token=3&q=keep&key=4#frag"
    assert secrets.redact_url(url) == (
        "https://bob:***@h.example/p?apikey=***&ApiKey=***&access_token=***&q=keep&key=***#frag"
    )


def test_urls_mask_known_values_anywhere() -> None:
    secrets = Secrets(["tok-12345"])
    assert secrets.redact_url("http://h/users/tok-12345/x?a=tok-12345") == (
        "http://h/users/***/x?a=***"
    )


def test_headers_mask_authorization_like_names_and_known_values() -> None:
    secrets = Secrets(["s3cr3t-value"])
    headers = {
        "Authorization": "Bearer x",
        "Cookie": "a=b",
        "X-Api-Key": "k",
        "X-Auth-Token": "t",
        "X-Client-Secret": "c",
        "X-Password-Hint": "p",
        "Accept": "application/json",
        "X-Echo": "saw s3cr3t-value",
    }
    assert secrets.redact_headers(headers) == {
        "Authorization": "***",
        "Cookie": "***",
        "X-Api-Key": "***",
        "X-Auth-Token": "***",
        "X-Client-Secret": "***",
        "X-Password-Hint": "***",
        "Accept": "application/json",
        "X-Echo": "saw ***",
    }
