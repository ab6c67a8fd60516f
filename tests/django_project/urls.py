from django.urls import include, path

urlpatterns = [path("", include("bharatsend_django.urls"))]
