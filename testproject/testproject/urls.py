from django.contrib.auth import views as auth_views
from django.urls import path
from shop import views

urlpatterns = [
    path("", views.home, name="home"),
    path("status.json", views.status_json, name="status-json"),
    path("cart/add/", views.add_to_cart, name="cart-add"),
    path("healthz", views.healthz, name="healthz"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
