"""Make N bench users, each with a confirmed address and an API token; prints the keys as JSON.

Run by bench.e2e inside the stack's environment (its own throwaway database)."""

from __future__ import annotations

import json
import os
import sys


def main() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deepfake_site.settings")
    django.setup()
    from allauth.account.models import EmailAddress
    from django.contrib.auth import get_user_model

    from accounts.services import api_token_create

    keys = []
    for i in range(int(sys.argv[1])):
        user = get_user_model().objects.create_user(
            username=f"bench{i}", email=f"bench{i}@example.com", password=None
        )
        EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=True)
        _, key = api_token_create(user=user, name="bench")
        keys.append(key)
    print(json.dumps(keys))


if __name__ == "__main__":
    main()
