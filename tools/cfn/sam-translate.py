#!/usr/bin/env python3
"""Print a SAM template transformed into plain CloudFormation, as JSON.

Usage: python3 tools/cfn/sam-translate.py template.yaml

It runs the AWS SAM translator (the samtranslator package that cfn-lint
bundles, in the same python3) through its public API,
samtranslator.translator.transform.transform, offline: the managed-policy
loader knows no policy names (so it never calls IAM; the template names
none), and a local CodeUri is replaced by a placeholder S3 location, as
cfn-lint does, since the translator wants one. pkg/stack's tests read the
output and check it against the code.

Exit status: 0 with the JSON on stdout; 2 when the template does not
transform (the translator's messages on stderr); 3 when samtranslator or
cfn-lint is not installed (the caller skips).
"""

import json
import os
import sys

try:
    from cfnlint.decode import cfn_yaml
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.translator.transform import transform
except ImportError as e:  # the Go test skips on status 3
    print(f"sam-translate: {e}", file=sys.stderr)
    sys.exit(3)


class OfflinePolicyLoader:
    """A managed-policy loader that knows no names and calls no AWS API."""

    def load(self):
        return {}


PLACEHOLDER_CODE = "s3://sam-translate-placeholder/code.zip"


def offline_code(template):
    """Point every local CodeUri at a placeholder S3 object."""
    functions = [template.get("Globals", {}).get("Function", {})]
    for res in template.get("Resources", {}).values():
        if res.get("Type") == "AWS::Serverless::Function":
            functions.append(res.setdefault("Properties", {}))
    for props in functions:
        uri = props.get("CodeUri")
        if isinstance(uri, str) and not uri.startswith("s3://"):
            props["CodeUri"] = PLACEHOLDER_CODE


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 64
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    template = json.loads(json.dumps(cfn_yaml.load(argv[1])))
    offline_code(template)
    try:
        out = transform(template, {}, OfflinePolicyLoader())
    except InvalidDocumentException as e:
        for cause in e.causes:
            print(f"sam-translate: {cause.message}", file=sys.stderr)
        return 2
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
