from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


# Placeholders until the detection pipeline lands.
@login_required
def upload(request: HttpRequest) -> HttpResponse:
    return render(request, "base.html")


@login_required
def history(request: HttpRequest) -> HttpResponse:
    return render(request, "base.html")


@login_required
def api_help(request: HttpRequest) -> HttpResponse:
    return render(request, "base.html")
