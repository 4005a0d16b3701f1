"""Django's `changepassword` (prompted, validated), and then, as for every password change, the user is signed
out everywhere: API tokens and sessions deleted, open websockets closed."""

import getpass
from typing import Any

from django.contrib.auth.management.commands import changepassword

from helpdesk.tenancy.actions import do_sign_out_everywhere
from helpdesk.tenancy.models import User


class Command(changepassword.Command):
    help = "Change a user's password (validated); signs them out everywhere."

    def handle(self, *args: Any, **options: Any) -> str:
        result = super().handle(*args, **options)
        email = options["username"] or getpass.getuser()
        do_sign_out_everywhere(User.objects.using(options["database"]).get(email=email))
        return str(result)
