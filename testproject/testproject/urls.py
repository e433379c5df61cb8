from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from shop import api, views

urlpatterns = [
    path("", views.home, name="home"),
    path("status.json", views.status_json, name="status-json"),
    path("cart/add/", views.add_to_cart, name="cart-add"),
    path("healthz", views.healthz, name="healthz"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("account/sessions/", include("django_msm.urls")),  # the user's sessions (issue 15)
    # For the chaos harness's load generator (chaos/load.py).
    path("api/login", api.login, name="api-login"),
    path("api/increment", api.increment, name="api-increment"),
    path("api/cart", api.add_to_cart, name="api-cart"),
    path("api/logout", api.logout, name="api-logout"),
    path("api/read", api.read, name="api-read"),
]
