from tests.conftest import login


async def test_login_then_profile(client):
    response = await login(client)
    assert response.status_code == 200
    body = await response.get_json()
    assert body["token_type"] == "Bearer"
    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200
    assert (await me.get_json())["username"] == "admin"
