"""Validate request bodies against the API's JSON schema models (draft-04).

The Go tests in internal/templatecheck call it:

    python3 validate_models.py < request.json

request.json: {"definitions": {<model name>: <schema>, ...},
               "cases": [{"model": <model name>, "body": <raw body text>}, ...]}
Prints one JSON array, one result per case, in order:
    {"valid": true}  or  {"valid": false, "errors": ["...", ...]}
or exits non-zero when a model is not a valid draft-04 schema.

How it follows API Gateway's request validator:
- The body is the raw text of the request. An empty (or blank) body is
  validated as {}, as API Gateway does; text that is not JSON is refused
  ("Invalid request body"). NaN and Infinity are not JSON and are refused.
- Models are draft-04 schemas; each case is validated against
  {"definitions": <all models>, "$ref": "#/definitions/<model>"}, so a
  model may refer to another one the way API Gateway resolves model refs.
- "pattern" is searched with Python's re module (jsonschema's behaviour).
  Python's and Java's "$" also match before one final newline, ECMA-262's
  does not: "abc\\n" passes ^[a-z]+$ here, and may in API Gateway; the Go
  tests leave such cases to the mapping templates, which refuse them.
- "format" is not checked (the models use none).

jsonschema comes with cfn-lint and aws-sam-translator (requirements-dev.txt).
"""

import json
import sys

import jsonschema
from jsonschema import Draft4Validator


def reject_constant(name):
    raise ValueError("%s is not JSON" % name)


def short(message, limit=160):
    """Messages quote the failing value; keep long ones readable."""
    return message if len(message) <= limit else message[:limit] + "... (%d characters)" % len(message)


def main():
    request = json.load(sys.stdin)
    definitions = request["definitions"]
    for name, schema in definitions.items():
        try:
            Draft4Validator.check_schema(schema)
        except jsonschema.exceptions.SchemaError as e:
            sys.exit("model %s is not a valid draft-04 schema: %s" % (name, e.message))
    validators = {}
    results = []
    for case in request["cases"]:
        model = case["model"]
        if model not in definitions:
            sys.exit("no model named %r" % model)
        if model not in validators:
            validators[model] = Draft4Validator(
                {"definitions": definitions, "$ref": "#/definitions/" + model}
            )
        body = case.get("body") or ""
        if body.strip() == "":
            body = "{}"
        try:
            instance = json.loads(body, parse_constant=reject_constant)
        except ValueError as e:
            results.append({"valid": False, "errors": ["Invalid request body: not JSON (%s)" % e]})
            continue
        errors = sorted(
            validators[model].iter_errors(instance), key=lambda e: list(e.absolute_path)
        )
        if errors:
            results.append(
                {
                    "valid": False,
                    "errors": [
                        "%s: %s" % ("/".join(str(p) for p in e.absolute_path) or "(body)", short(e.message))
                        for e in errors
                    ],
                }
            )
        else:
            results.append({"valid": True})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
