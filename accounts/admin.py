from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from accounts.models import ApiToken, User

# Django's own user admin (password hashing, permissions, groups) for our user model.
admin.site.register(User, UserAdmin)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    # Read-only: tokens are created by their owner (the key is shown only to them) and a hash
    # edited by hand would be useless.
    list_display = ["name", "owner", "key_prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "key_prefix", "owner__username", "owner__email"]
    readonly_fields = [
        "owner", "name", "key_prefix", "key_hash", "created_at", "last_used_at", "revoked_at"
    ]

    def has_add_permission(self, request) -> bool:
        return False
