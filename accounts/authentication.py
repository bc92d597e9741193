from rest_framework.authentication import BaseAuthentication


class ApiTokenAuthentication(BaseAuthentication):  # placeholder until the accounts work lands
    keyword = "Token"

    def authenticate(self, request):
        return None

    def authenticate_header(self, request):
        return self.keyword
