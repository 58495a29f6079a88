from django.urls import include, path

from playground import views

urlpatterns = [
    path('', views.index, name='index'),
    path('playground/', include('playground.urls')),
    path('login/', views.login, name='login'),
    path('account/', views.account, name='account'),
]
